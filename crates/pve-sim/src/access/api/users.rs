//! `/access/users` and `/access/password`: list, create, read, update and delete users, and
//! change a password.

use serde_json::{Map, Value, json};

use super::formats::check_formats;
use super::perms::{allowed_groups, user_must_exist};
use super::tokens::{token_json, token_list_json};
use super::{acc, change, failed, opt_bool, opt_u64, required};
use crate::access::{AccessControl, UserOptions, names, split_list};
use crate::error::ApiError;
use crate::router::{Ctx, Reply};

/// `extract_user_data`: the stored fields, plus groups and tokens when `full`.
fn user_json(acc: &AccessControl, userid: &str, full: bool) -> Map<String, Value> {
    let mut m = Map::new();
    let Some(u) = acc.user(userid) else {
        return m;
    };
    m.insert("enable".into(), json!(u8::from(u.enable)));
    m.insert("expire".into(), json!(u.expire));
    for (k, v) in [
        ("firstname", &u.firstname),
        ("lastname", &u.lastname),
        ("email", &u.email),
        ("comment", &u.comment),
        ("keys", &u.keys),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if full {
        m.insert("groups".into(), json!(acc.user_groups(userid)));
        let tokens: Map<String, Value> = u
            .tokens
            .iter()
            .map(|(name, t)| (name.clone(), token_json(t)))
            .collect();
        m.insert("tokens".into(), Value::Object(tokens));
    }
    m
}

/// The user options of a create or update call.
fn user_options(ctx: &Ctx<'_>) -> UserOptions {
    UserOptions {
        enable: opt_bool(ctx, "enable"),
        expire: opt_u64(ctx, "expire"),
        firstname: ctx.params.str("firstname"),
        lastname: ctx.params.str("lastname"),
        email: ctx.params.str("email"),
        comment: ctx.params.str("comment"),
        keys: ctx.params.str("keys"),
        groups: ctx
            .params
            .str("groups")
            .map(|g| split_list(&g).map(str::to_string).collect()),
    }
}

/// `GET /access/users`: users the caller may see (`User.Modify` or `Sys.Audit` on
/// `/access/groups` or on one of the user's groups), always including the caller.
pub(super) fn list_users(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let privs = ["User.Modify", "Sys.Audit"];
    let can_all = ctx.check("/access/groups", &privs, true);
    let allowed = allowed_groups(ctx, &privs);
    let me = ctx.auth_id();
    let full = ctx.params.flag("full");
    let enabled = opt_bool(ctx, "enabled");
    let a = acc(ctx);
    let mut out = Vec::new();
    for (userid, u) in a.users() {
        let visible = can_all
            || *userid == me
            || allowed
                .iter()
                .any(|g| a.group(g).is_some_and(|grp| grp.users.contains(userid)));
        if !visible || enabled.is_some_and(|e| e != u.enable) {
            continue;
        }
        let mut m = user_json(a, userid, full);
        if full {
            m.insert("groups".into(), json!(a.user_groups(userid).join(",")));
            m.insert("tokens".into(), Value::Array(token_list_json(&u.tokens)));
        }
        m.insert("userid".into(), json!(userid));
        if let Some((_, realm)) = names::split_userid(userid) {
            m.insert("realm-type".into(), json!(realm));
        }
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out).into())
}

/// `POST /access/users`.
pub(super) fn create_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "POST", "/access/users")?;
    let password = ctx.params.str("password");
    let opts = user_options(ctx);
    change(ctx, |a| a.user_add(&userid, password.as_deref(), opts))
        .map_err(|e| failed("create user failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/users/{userid}`.
pub(super) fn read_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "GET", "/access/users/{userid}")?;
    user_must_exist(ctx, &userid)?;
    Ok(Value::Object(user_json(acc(ctx), &userid, true)).into())
}

/// `PUT /access/users/{userid}`.
pub(super) fn update_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "PUT", "/access/users/{userid}")?;
    let append = ctx.params.flag("append");
    if append && !ctx.params.has("groups") {
        return Err(ApiError::param(
            "groups",
            crate::params::requires_message(ctx.sim.state.config.pve_version, "append"),
        ));
    }
    let opts = user_options(ctx);
    change(ctx, |a| a.user_modify(&userid, opts, append))
        .map_err(|e| failed("update user failed", e))?;
    Ok(Value::Null.into())
}

/// `DELETE /access/users/{userid}`.
pub(super) fn delete_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "DELETE", "/access/users/{userid}")?;
    change(ctx, |a| a.user_delete(&userid)).map_err(|e| failed("delete user failed", e))?;
    Ok(Value::Null.into())
}

/// `PUT /access/password`: a user changes its own password (confirming it with
/// `confirmation-password`), or one with `Realm.AllocateUser` and `User.Modify` changes another's;
/// only root changes root's, and `pam` users' passwords only root or the user.
pub(super) fn change_password(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    let me = ctx.auth_id();
    check_formats(ctx, "PUT", "/access/password")?;
    let password = required(ctx, "password")?;
    // reauth_user_for_user_modification
    user_must_exist(ctx, &userid)?;
    acc(ctx)
        .check_user_enabled(&userid)
        .map_err(ApiError::internal)?;
    if userid == crate::access::ROOT_USER && !ctx.is_root() {
        return Err(ApiError::perm_bare());
    }
    if !ctx.is_root() {
        let Some(confirm) = ctx.params.str("confirmation-password") else {
            return Err(ApiError::param(
                "confirmation-password",
                "password is required to modify user",
            ));
        };
        if acc(ctx).authenticate_password(&me, &confirm).is_err() {
            return Err(ApiError::internal("invalid credentials"));
        }
        if me != userid && names::split_userid(&userid).is_some_and(|(_, r)| r == "pam") {
            return Err(ApiError::perm_bare());
        }
    }
    change(ctx, |a| a.user_passwd(&userid, &password)).map_err(ApiError::internal)?;
    Ok(Value::Null.into())
}
