//! `/access/roles`: list, create, read, update and delete roles (built-in roles are read-only).

use serde_json::{Map, Value, json};

use super::formats::check_formats;
use super::{acc, change, failed, list_param, required};
use crate::access::AccessError;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};

/// `GET /access/roles`: every role with its privileges and whether it is built in.
pub(super) fn list_roles(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let out: Vec<Value> = acc(ctx)
        .all_roles()
        .into_iter()
        .map(|(name, (privs, special))| {
            let list: Vec<String> = privs.into_iter().collect();
            json!({ "roleid": name, "privs": list.join(","), "special": u8::from(special) })
        })
        .collect();
    Ok(Value::Array(out).into())
}

/// `POST /access/roles`.
pub(super) fn create_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "POST", "/access/roles")?;
    let name = required(ctx, "roleid")?;
    if name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("PVE")) {
        return Err(ApiError::param(
            "roleid",
            AccessError::ReservedRolePrefix.to_string(),
        ));
    }
    let privs = list_param(ctx, "privs");
    let refs: Vec<&str> = privs.iter().map(String::as_str).collect();
    change(ctx, |a| a.role_add(&name, &refs)).map_err(|e| failed("create role failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/roles/{roleid}`: privilege -> 1.
pub(super) fn read_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "GET", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    let privs = acc(ctx)
        .role(&name)
        .ok_or_else(|| ApiError::internal(AccessError::NoSuchRole(name.clone())))?;
    let m: Map<String, Value> = privs.into_iter().map(|p| (p, json!(1))).collect();
    Ok(Value::Object(m).into())
}

/// `PUT /access/roles/{roleid}`.
pub(super) fn update_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "PUT", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    let append = ctx.params.flag("append");
    let privs = list_param(ctx, "privs");
    let refs: Vec<&str> = privs.iter().map(String::as_str).collect();
    change(ctx, |a| a.role_modify(&name, &refs, append)).map_err(|e| match e {
        AccessError::BuiltinRoleModify(_) => ApiError::internal(e),
        e => failed("update role failed", e),
    })?;
    Ok(Value::Null.into())
}

/// `DELETE /access/roles/{roleid}`.
pub(super) fn delete_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "DELETE", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    change(ctx, |a| a.role_delete(&name)).map_err(|e| match e {
        AccessError::BuiltinRoleDelete(_) => ApiError::internal(e),
        e => failed("delete role failed", e),
    })?;
    Ok(Value::Null.into())
}
