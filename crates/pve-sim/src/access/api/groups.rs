//! `/access/groups`: list, create, read, update and delete groups.

use serde_json::{Map, Value, json};

use super::formats::check_formats;
use super::perms::allowed_groups;
use super::{acc, change, failed, required};
use crate::access::AccessError;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};

/// `GET /access/groups`: groups on which the caller has `User.Modify`, `Sys.Audit` or
/// `Group.Allocate`.
pub(super) fn list_groups(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let allowed = allowed_groups(ctx, &["User.Modify", "Sys.Audit", "Group.Allocate"]);
    let a = acc(ctx);
    let out: Vec<Value> = allowed
        .iter()
        .filter_map(|name| a.group(name).map(|g| (name, g)))
        .map(|(name, g)| {
            let mut m = Map::new();
            m.insert("groupid".into(), json!(name));
            if let Some(c) = &g.comment {
                m.insert("comment".into(), json!(c));
            }
            let users: Vec<&str> = g.users.iter().map(String::as_str).collect();
            m.insert("users".into(), json!(users.join(",")));
            Value::Object(m)
        })
        .collect();
    Ok(Value::Array(out).into())
}

/// `POST /access/groups`.
pub(super) fn create_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "POST", "/access/groups")?;
    let name = required(ctx, "groupid")?;
    let comment = ctx.params.str("comment");
    change(ctx, |a| a.group_add(&name, comment.as_deref()))
        .map_err(|e| failed("create group failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/groups/{groupid}`: `comment` and `members`.
pub(super) fn read_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "GET", "/access/groups/{groupid}")?;
    let name = required(ctx, "groupid")?;
    let group = acc(ctx)
        .group(&name)
        .ok_or_else(|| ApiError::internal(AccessError::NoSuchGroup(name.clone())))?;
    let mut m = Map::new();
    if let Some(c) = &group.comment {
        m.insert("comment".into(), json!(c));
    }
    m.insert("members".into(), json!(group.users));
    Ok(Value::Object(m).into())
}

/// `PUT /access/groups/{groupid}`.
pub(super) fn update_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "PUT", "/access/groups/{groupid}")?;
    let name = required(ctx, "groupid")?;
    let comment = ctx.params.str("comment");
    change(ctx, |a| a.group_modify(&name, comment.as_deref()))
        .map_err(|e| failed("update group failed", e))?;
    Ok(Value::Null.into())
}

/// `DELETE /access/groups/{groupid}`.
pub(super) fn delete_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "DELETE", "/access/groups/{groupid}")?;
    let name = required(ctx, "groupid")?;
    change(ctx, |a| a.group_delete(&name)).map_err(|e| failed("delete group failed", e))?;
    Ok(Value::Null.into())
}
