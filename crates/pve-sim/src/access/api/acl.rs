//! `/access/acl` and `/access/permissions`: list and change ACL entries, and the effective
//! permissions of a user or token.

use serde_json::{Value, json};

use super::formats::check_formats;
use super::{acc, change, failed, list_param, opt_bool, required};
use crate::access::{AccessError, AclChange, names};
use crate::error::ApiError;
use crate::router::{Ctx, Reply};

/// `GET /access/acl`: entries on paths where the caller may change permissions (all of them
/// with `Sys.Audit` on `/access`).
pub(super) fn list_acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let who = ctx.auth_id();
    let a = acc(ctx);
    let audit = a.check(&who, "/access", &["Sys.Audit"], false);
    let out: Vec<Value> = a
        .acl_entries()
        .into_iter()
        .filter(|e| audit || a.check_perm_modify(&who, Some(&e.path)))
        .map(|e| {
            let (ty, ugid) = match e.subject {
                crate::access::AclSubject::User(u) => ("user", u),
                crate::access::AclSubject::Group(g) => ("group", g),
                crate::access::AclSubject::Token(t) => ("token", t),
            };
            json!({
                "path": e.path,
                "type": ty,
                "ugid": ugid,
                "roleid": e.role,
                "propagate": u8::from(e.propagate),
            })
        })
        .collect();
    Ok(Value::Array(out).into())
}

/// `PUT /access/acl`: `perm-modify` on the path, then grant or revoke.
pub(super) fn update_acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let raw_path = required(ctx, "path")?;
    check_formats(ctx, "PUT", "/access/acl")?;
    let change_req = AclChange {
        path: raw_path.clone(),
        roles: list_param(ctx, "roles"),
        users: list_param(ctx, "users"),
        groups: list_param(ctx, "groups"),
        tokens: list_param(ctx, "tokens"),
        propagate: opt_bool(ctx, "propagate").unwrap_or(true),
        delete: ctx.params.flag("delete"),
    };
    let caller = (!ctx.is_root()).then(|| ctx.auth_id());
    match change(ctx, |a| a.acl_update(&change_req, caller.as_deref())) {
        Ok(()) => Ok(Value::Null.into()),
        Err(AccessError::InvalidAclPath(_)) => Err(ApiError::param(
            "path",
            format!("invalid ACL path '{raw_path}'"),
        )),
        Err(AccessError::NoAclMembers) => {
            let msg = "either 'users', 'groups' or 'tokens' is required.";
            Err(ApiError::params(
                ["users", "groups", "tokens"]
                    .iter()
                    .map(|k| (k.to_string(), msg.to_string()))
                    .collect(),
            ))
        }
        Err(AccessError::AclRoleDenied(msg)) => Err(ApiError::internal(format!(
            "ACL update failed: 400 Parameter verification failed.\nrole: {msg}"
        ))),
        Err(e) => Err(failed("ACL update failed", e)),
    }
}

/// `GET /access/permissions`: the caller's own (or an owned token's) effective permissions, or
/// anyone's with `Sys.Audit` on `/access`.
pub(super) fn read_permissions(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let me = ctx.auth_id();
    let target = ctx.params.str("userid").unwrap_or_else(|| me.clone());
    if let Some(t) = ctx.params.str("userid")
        && !(names::is_valid_userid(&t) || names::split_tokenid(&t).is_some())
    {
        return Err(ApiError::param(
            "userid",
            "value does not match the regex pattern",
        ));
    }
    let owned_token = names::split_tokenid(&target).is_some_and(|(u, _)| u == me);
    if target != me && !owned_token {
        ctx.require("/access", &["Sys.Audit"], false)?;
    }
    let path = ctx.params.str("path").filter(|p| !p.is_empty());
    let tree = acc(ctx).permissions_tree(&target, path.as_deref());
    Ok(serde_json::to_value(tree).unwrap_or(Value::Null).into())
}
