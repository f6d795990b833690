//! The `/access` HTTP API as PVE 8.4 and 9.1 serve it (`API2/AccessControl.pm`, `User.pm`, `Group.pm`,
//! `Role.pm`, `ACL.pm`): users, tokens, groups, roles, ACLs, effective permissions and password
//! changes, with the permission checks of each method and PVE's error texts.
//!
//! Method-level checks that the router's [`Perm`] can express are declared on the route; the
//! `userid-param`/`userid-group`/`perm-modify` checks run first thing in the handler (root@pam
//! passes them all, as `check_api2_permissions` lets it).

use serde_json::{Map, Value, json};

use super::{AccessControl, AccessError, AclChange, UserOptions, names, params, split_list};
use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::version::PveVersion;

/// The `/access/*` routes of the simulator (`/access/ticket` is the server's own) and `/pools`.
pub fn routes() -> Vec<Route> {
    let sys_modify = Perm::Check {
        path: "/access",
        privs: &["Sys.Modify"],
        any: false,
    };
    let group_alloc = Perm::Check {
        path: "/access/groups",
        privs: &["Group.Allocate"],
        any: false,
    };
    let group_read = Perm::Check {
        path: "/access/groups",
        privs: &["Sys.Audit", "Group.Allocate"],
        any: true,
    };
    let users = "/access/users";
    let user = "/access/users/{userid}";
    let tokens = "/access/users/{userid}/token";
    let token = "/access/users/{userid}/token/{tokenid}";
    vec![
        route("GET", "/access", Perm::All, index),
        route("GET", users, Perm::All, list_users),
        route("POST", users, Perm::Custom(perm_create_user), create_user),
        route("GET", user, Perm::Custom(perm_read_user), read_user),
        route("PUT", user, Perm::Custom(perm_update_user), update_user),
        route("DELETE", user, Perm::Custom(perm_delete_user), delete_user),
        route(
            "GET",
            tokens,
            Perm::Custom(perm_own_or_user_modify),
            list_tokens,
        ),
        route(
            "GET",
            token,
            Perm::Custom(perm_own_or_user_modify),
            read_token,
        ),
        route(
            "POST",
            token,
            Perm::Custom(perm_own_or_user_modify),
            create_token,
        ),
        route(
            "PUT",
            token,
            Perm::Custom(perm_own_or_user_modify),
            update_token,
        ),
        route(
            "DELETE",
            token,
            Perm::Custom(perm_own_or_user_modify),
            delete_token,
        ),
        route("GET", "/access/groups", Perm::All, list_groups),
        route("POST", "/access/groups", group_alloc, create_group),
        route("GET", "/access/groups/{groupid}", group_read, read_group),
        route("PUT", "/access/groups/{groupid}", group_alloc, update_group),
        route(
            "DELETE",
            "/access/groups/{groupid}",
            group_alloc,
            delete_group,
        ),
        route("GET", "/access/roles", Perm::All, list_roles),
        route("POST", "/access/roles", sys_modify, create_role),
        route("GET", "/access/roles/{roleid}", Perm::All, read_role),
        route("PUT", "/access/roles/{roleid}", sys_modify, update_role),
        route("DELETE", "/access/roles/{roleid}", sys_modify, delete_role),
        route("GET", "/access/acl", Perm::All, list_acl),
        route(
            "PUT",
            "/access/acl",
            Perm::Custom(perm_update_acl),
            update_acl,
        ),
        route("GET", "/access/permissions", Perm::All, read_permissions),
        route(
            "PUT",
            "/access/password",
            Perm::Custom(perm_change_password),
            change_password,
        )
        .no_token(),
        route("GET", "/access/domains", Perm::World, list_domains),
    ]
    .into_iter()
    .chain(super::pools_api::routes())
    .collect()
}

/// A route with the parameter tables of the PVE 8.4 and 9.1 schemas.
pub(super) fn route(
    method: &'static str,
    path: &'static str,
    perm: Perm,
    handler: crate::router::Handler,
) -> Route {
    let mut r = Route::new(method, path, perm, handler);
    r.params = super::param_table_for(PveVersion::Pve8_4, method, path);
    r.params_9_1 = super::param_table_for(PveVersion::Pve9_1, method, path);
    r
}

/// The minimum length (`minLength`) of parameter `name` of `method path` in `version`'s schema.
fn min_length(version: PveVersion, method: &str, path: &str, name: &str) -> Option<usize> {
    match version {
        PveVersion::Pve8_4 => params::min_length(method, path, name),
        PveVersion::Pve9_1 => super::params_9_1::min_length(method, path, name),
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters and errors

/// The checks of the named formats and minimum lengths of the `/access` tables that the generic
/// validator does not know, with PVE's messages (`JSONSchema::check_format`).
fn check_formats(ctx: &Ctx<'_>, method: &str, path: &str) -> Result<(), ApiError> {
    let version = ctx.sim.state.config.pve_version;
    let Some(table) = super::param_table_for(version, method, path) else {
        return Ok(());
    };
    let mut errors = std::collections::BTreeMap::new();
    for rule in table {
        let Some(value) = ctx.params.str(rule.name) else {
            continue;
        };
        if let Some(min) = min_length(version, method, path, rule.name)
            && value.chars().count() < min
        {
            errors.insert(
                rule.name.to_string(),
                format!("value must be at least {min} characters long"),
            );
            continue;
        }
        let crate::params::Format::Named(format) = rule.format else {
            continue;
        };
        let (item_format, items): (&str, Vec<&str>) = match format.strip_suffix("-list") {
            Some(item) => (item, split_list(&value).collect()),
            None => (format, vec![value.as_str()]),
        };
        let version = ctx.sim.state.config.pve_version;
        if let Some(err) = items
            .iter()
            .find_map(|v| format_error(version, item_format, v))
        {
            errors.insert(rule.name.to_string(), format!("invalid format - {err}\n"));
        }
    }
    rule_pattern_errors(ctx, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::params(errors))
    }
}

/// The Perl-syntax patterns the generic validator cannot compile: `tokenid` and `userid` of
/// `/access/permissions`.
fn rule_pattern_errors(ctx: &Ctx<'_>, errors: &mut std::collections::BTreeMap<String, String>) {
    if let Some(t) = ctx.params.str("tokenid")
        && !names::is_realm_like(&t)
    {
        errors.insert(
            "tokenid".into(),
            "value does not match the regex pattern".into(),
        );
    }
}

/// The error of one value of a named format, `None` if it is valid (or not checked here).
/// Privilege names are those of `version` (`verify_privname`).
fn format_error(version: PveVersion, format: &str, v: &str) -> Option<String> {
    match format {
        "pve-userid" if !names::is_valid_userid(v) => {
            Some(format!("value '{v}' does not look like a valid user name"))
        }
        "pve-groupid" if !names::is_valid_groupname(v) => {
            Some(format!("group name '{v}' contains invalid characters"))
        }
        "pve-roleid" if !names::is_valid_rolename(v) => {
            Some(format!("role name '{v}' contains invalid characters"))
        }
        "pve-priv" if !super::is_valid_privilege(version, v) => {
            Some(format!("invalid privilege '{v}'"))
        }
        "pve-tokenid" if names::split_tokenid(v).is_none() => {
            Some(format!("value '{v}' does not look like a valid token ID"))
        }
        "pve-vmid"
            if !v
                .parse::<u32>()
                .is_ok_and(|id| (100..=999_999_999).contains(&id)) =>
        {
            Some("value does not look like a valid VM ID".to_string())
        }
        "pve-storage-id" if !super::names::is_valid_storeid(v) => {
            Some(format!("storage ID '{v}' contains illegal characters"))
        }
        "email-opt" if !v.is_empty() && !looks_like_email(v) => {
            Some("value does not look like a valid email address".to_string())
        }
        _ => None,
    }
}

/// A loose e-mail check (`local@domain` without whitespace).
fn looks_like_email(v: &str) -> bool {
    v.split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !v.chars().any(char::is_whitespace))
}

/// A handler `die` wrapped as `lock_user_config` does: `"<what>: <error>"`, HTTP 500.
fn failed(what: &str, err: AccessError) -> ApiError {
    ApiError::internal(format!("{what}: {err}"))
}

/// A string parameter that the schema requires.
fn required(ctx: &Ctx<'_>, name: &str) -> Result<String, ApiError> {
    ctx.param(name)
}

/// An optional boolean parameter.
fn opt_bool(ctx: &Ctx<'_>, name: &str) -> Option<bool> {
    ctx.params.has(name).then(|| ctx.params.flag(name))
}

/// An optional non-negative integer parameter.
fn opt_u64(ctx: &Ctx<'_>, name: &str) -> Option<u64> {
    ctx.params
        .int(name)
        .map(|v| u64::try_from(v).unwrap_or_default())
}

/// The access configuration.
fn acc<'a>(ctx: &'a Ctx<'_>) -> &'a AccessControl {
    &ctx.sim.state.access
}

/// Applies a change to the configuration and marks the state for persisting.
fn change<T>(
    ctx: &mut Ctx<'_>,
    f: impl FnOnce(&mut AccessControl) -> Result<T, AccessError>,
) -> Result<T, AccessError> {
    let out = f(&mut ctx.sim.state.access)?;
    ctx.sim.dirty = true;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The permission checks of `RPCEnvironment::check_api2_permissions` that name a user

/// How the `userid-group` check treats the `groups` parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GroupsParam {
    /// No `groups_param` option.
    None,
    /// `groups_param => 'create'`: the given groups must all be allowed; none given needs the
    /// privilege on `/access/groups`.
    Create,
    /// `groups_param => 'update'`: as create, and the user must be in an allowed group too.
    Update,
}

/// `check_user_exist` as a plain `die` (HTTP 500).
fn user_must_exist(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiError> {
    if acc(ctx).user(userid).is_some() {
        Ok(())
    } else {
        Err(ApiError::internal(AccessError::NoSuchUser(userid.into())))
    }
}

/// `['userid-param', 'self']`: the caller is the user (a token is not its user).
fn userid_self(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    user_must_exist(ctx, userid)?;
    if ctx.auth_id() == userid {
        Ok(())
    } else {
        Err(ApiError::perm_bare())
    }
}

/// `['userid-param', 'Realm.AllocateUser']` on `/access/realm/<realm of userid>`.
fn userid_realm_alloc(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    let realm = names::split_userid(userid)
        .map(|(_, r)| r)
        .ok_or_else(|| ApiError::internal(AccessError::InvalidUserid(userid.into())))?;
    ctx.require(
        &format!("/access/realm/{realm}"),
        &["Realm.AllocateUser"],
        false,
    )
}

/// The groups on which the caller has one of `privs` (`filter_groups`).
fn allowed_groups(ctx: &Ctx<'_>, privs: &[&str]) -> Vec<String> {
    let who = ctx.auth_id();
    acc(ctx)
        .groups()
        .keys()
        .filter(|g| acc(ctx).check(&who, &format!("/access/groups/{g}"), privs, true))
        .cloned()
        .collect()
}

/// `['userid-group', privs, groups_param => ...]`.
fn userid_group(
    ctx: &Ctx<'_>,
    userid: &str,
    privs: &[&str],
    mode: GroupsParam,
) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    if mode != GroupsParam::Create {
        user_must_exist(ctx, userid)?;
    }
    if ctx.check("/access/groups", privs, true) {
        return Ok(());
    }
    let allowed = allowed_groups(ctx, privs);
    let given: Vec<String> = ctx
        .params
        .str("groups")
        .map(|g| split_list(&g).map(str::to_string).collect())
        .unwrap_or_default();
    if mode != GroupsParam::None {
        if given.is_empty() {
            return Err(ApiError::perm(format!(
                "/access/groups, {}",
                privs.join("|")
            )));
        }
        if let Some(g) = given.iter().find(|g| !allowed.contains(g)) {
            return Err(ApiError::perm(format!(
                "/access/groups/{g}, {}",
                privs.join("|")
            )));
        }
        if mode == GroupsParam::Create {
            return Ok(());
        }
    }
    let member = allowed.iter().any(|g| {
        acc(ctx)
            .group(g)
            .is_some_and(|grp| grp.users.contains(userid))
    });
    if member {
        Ok(())
    } else {
        Err(ApiError::perm_bare())
    }
}

/// `['or', A, B]`: any sub-check passing is enough; else a bare 403.
fn either(
    a: Result<(), ApiError>,
    b: impl FnOnce() -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    if a.is_ok() || b().is_ok() {
        Ok(())
    } else {
        Err(ApiError::perm_bare())
    }
}

/// `['or', ['userid-param', 'self'], ['userid-group', ['User.Modify']]]` (the token methods).
fn self_or_user_modify(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiError> {
    either(userid_self(ctx, userid), || {
        userid_group(ctx, userid, &["User.Modify"], GroupsParam::None)
    })
}

// ---------------------------------------------------------------------------------------------
// JSON renderings

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

/// A token's info: `privsep`, `expire`, `comment`.
fn token_json(t: &super::Token) -> Value {
    let mut m = Map::new();
    m.insert("privsep".into(), json!(u8::from(t.privsep)));
    m.insert("expire".into(), json!(t.expire));
    if let Some(c) = &t.comment {
        m.insert("comment".into(), json!(c));
    }
    Value::Object(m)
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

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /access`: the directory index.
fn index(_ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let dirs = [
        "users",
        "groups",
        "roles",
        "acl",
        "domains",
        "openid",
        "tfa",
        "ticket",
        "password",
        "permissions",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
}

/// `GET /access/domains`: the realms of a default installation (no authentication needed: the
/// login form lists them).
fn list_domains(_ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    Ok(json!([
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
    ])
    .into())
}

/// `GET /access/users`: users the caller may see (`User.Modify` or `Sys.Audit` on
/// `/access/groups` or on one of the user's groups), always including the caller.
fn list_users(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
            let tokens: Vec<Value> = u
                .tokens
                .iter()
                .map(|(name, t)| {
                    let mut v = token_json(t);
                    if let Value::Object(o) = &mut v {
                        o.insert("tokenid".into(), json!(name));
                    }
                    v
                })
                .collect();
            m.insert("tokens".into(), Value::Array(tokens));
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
fn create_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "POST", "/access/users")?;
    let password = ctx.params.str("password");
    let opts = user_options(ctx);
    change(ctx, |a| a.user_add(&userid, password.as_deref(), opts))
        .map_err(|e| failed("create user failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/users/{userid}`.
fn read_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "GET", "/access/users/{userid}")?;
    user_must_exist(ctx, &userid)?;
    Ok(Value::Object(user_json(acc(ctx), &userid, true)).into())
}

/// `PUT /access/users/{userid}`.
fn update_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
fn delete_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "DELETE", "/access/users/{userid}")?;
    change(ctx, |a| a.user_delete(&userid)).map_err(|e| failed("delete user failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/users/{userid}/token`.
fn list_tokens(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "GET", "/access/users/{userid}/token")?;
    let user = acc(ctx)
        .user(&userid)
        .ok_or_else(|| ApiError::internal(AccessError::NoSuchUser(userid.clone())))?;
    let list: Vec<Value> = user
        .tokens
        .iter()
        .map(|(name, t)| {
            let mut v = token_json(t);
            if let Value::Object(o) = &mut v {
                o.insert("tokenid".into(), json!(name));
            }
            v
        })
        .collect();
    Ok(Value::Array(list).into())
}

/// The token named by the path, or PVE's `no such token` error.
fn path_token(ctx: &Ctx<'_>) -> Result<(String, String), ApiError> {
    let userid = required(ctx, "userid")?;
    let tokenid = required(ctx, "tokenid")?;
    Ok((userid, tokenid))
}

/// `GET /access/users/{userid}/token/{tokenid}`.
fn read_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "GET", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    let Some(token) = acc(ctx).token(&userid, &tokenid) else {
        return Ok(Value::Null.into());
    };
    Ok(token_json(token).into())
}

/// `POST /access/users/{userid}/token/{tokenid}`: answers `full-tokenid`, `info` and `value`.
fn create_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "POST", "/access/users/{userid}/token/{tokenid}")?;
    user_must_exist(ctx, &userid)?;
    if acc(ctx).token(&userid, &tokenid).is_some() {
        return Err(ApiError::param("tokenid", "Token already exists."));
    }
    let privsep = opt_bool(ctx, "privsep");
    let expire = opt_u64(ctx, "expire");
    let comment = ctx.params.str("comment");
    let value = change(ctx, |a| {
        a.token_add(&userid, &tokenid, privsep, expire, comment.as_deref())
    })
    .map_err(|e| failed("generating token failed", e))?;
    let mut info = Map::new();
    // PVE echoes given parameters as it received them (strings from a form body); only the
    // default privsep is a number.
    match privsep {
        Some(p) => info.insert("privsep".into(), json!(u8::from(p).to_string())),
        None => info.insert("privsep".into(), json!(1)),
    };
    if let Some(e) = expire {
        info.insert("expire".into(), json!(e.to_string()));
    }
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        info.insert("comment".into(), json!(c));
    }
    Ok(json!({
        "full-tokenid": format!("{userid}!{tokenid}"),
        "info": info,
        "value": value,
    })
    .into())
}

/// The token named by the path must exist (`check_token_exist`, a plain 500).
fn token_must_exist(ctx: &Ctx<'_>, userid: &str, tokenid: &str) -> Result<(), ApiError> {
    user_must_exist(ctx, userid)?;
    match acc(ctx).token(userid, tokenid) {
        Some(_) => Ok(()),
        None => Err(ApiError::internal(AccessError::NoSuchToken {
            user: userid.to_string(),
            token: tokenid.to_string(),
        })),
    }
}

/// `PUT /access/users/{userid}/token/{tokenid}`: answers the updated token info.
fn update_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "PUT", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    let privsep = opt_bool(ctx, "privsep");
    let expire = opt_u64(ctx, "expire");
    let comment = ctx.params.str("comment");
    change(ctx, |a| {
        a.token_modify(&userid, &tokenid, privsep, expire, comment.as_deref())
    })
    .map_err(|e| failed("updating token info failed", e))?;
    let token = acc(ctx)
        .token(&userid, &tokenid)
        .map(token_json)
        .unwrap_or(Value::Null);
    Ok(token.into())
}

/// `DELETE /access/users/{userid}/token/{tokenid}`.
fn delete_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "DELETE", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    change(ctx, |a| a.token_remove(&userid, &tokenid))
        .map_err(|e| failed("deleting token failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/groups`: groups on which the caller has `User.Modify`, `Sys.Audit` or
/// `Group.Allocate`.
fn list_groups(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
fn create_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "POST", "/access/groups")?;
    let name = required(ctx, "groupid")?;
    let comment = ctx.params.str("comment");
    change(ctx, |a| a.group_add(&name, comment.as_deref()))
        .map_err(|e| failed("create group failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/groups/{groupid}`: `comment` and `members`.
fn read_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
fn update_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "PUT", "/access/groups/{groupid}")?;
    let name = required(ctx, "groupid")?;
    let comment = ctx.params.str("comment");
    change(ctx, |a| a.group_modify(&name, comment.as_deref()))
        .map_err(|e| failed("update group failed", e))?;
    Ok(Value::Null.into())
}

/// `DELETE /access/groups/{groupid}`.
fn delete_group(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "DELETE", "/access/groups/{groupid}")?;
    let name = required(ctx, "groupid")?;
    change(ctx, |a| a.group_delete(&name)).map_err(|e| failed("delete group failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/roles`: every role with its privileges and whether it is built in.
fn list_roles(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

/// The `privs` parameter as a list.
fn privs_param(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.params
        .str("privs")
        .map(|p| split_list(&p).map(str::to_string).collect())
        .unwrap_or_default()
}

/// `POST /access/roles`.
fn create_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "POST", "/access/roles")?;
    let name = required(ctx, "roleid")?;
    if name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("PVE")) {
        return Err(ApiError::param(
            "roleid",
            AccessError::ReservedRolePrefix.to_string(),
        ));
    }
    let privs = privs_param(ctx);
    let refs: Vec<&str> = privs.iter().map(String::as_str).collect();
    change(ctx, |a| a.role_add(&name, &refs)).map_err(|e| failed("create role failed", e))?;
    Ok(Value::Null.into())
}

/// `GET /access/roles/{roleid}`: privilege -> 1.
fn read_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "GET", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    let privs = acc(ctx)
        .role(&name)
        .ok_or_else(|| ApiError::internal(AccessError::NoSuchRole(name.clone())))?;
    let m: Map<String, Value> = privs.into_iter().map(|p| (p, json!(1))).collect();
    Ok(Value::Object(m).into())
}

/// `PUT /access/roles/{roleid}`.
fn update_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "PUT", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    let append = ctx.params.flag("append");
    let privs = privs_param(ctx);
    let refs: Vec<&str> = privs.iter().map(String::as_str).collect();
    change(ctx, |a| a.role_modify(&name, &refs, append)).map_err(|e| match e {
        AccessError::BuiltinRoleModify(_) => ApiError::internal(e),
        e => failed("update role failed", e),
    })?;
    Ok(Value::Null.into())
}

/// `DELETE /access/roles/{roleid}`.
fn delete_role(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    check_formats(ctx, "DELETE", "/access/roles/{roleid}")?;
    let name = required(ctx, "roleid")?;
    change(ctx, |a| a.role_delete(&name)).map_err(|e| match e {
        AccessError::BuiltinRoleDelete(_) => ApiError::internal(e),
        e => failed("delete role failed", e),
    })?;
    Ok(Value::Null.into())
}

/// `GET /access/acl`: entries on paths where the caller may change permissions (all of them
/// with `Sys.Audit` on `/access`).
fn list_acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let who = ctx.auth_id();
    let a = acc(ctx);
    let audit = a.check(&who, "/access", &["Sys.Audit"], false);
    let out: Vec<Value> = a
        .acl_entries()
        .into_iter()
        .filter(|e| audit || a.check_perm_modify(&who, Some(&e.path)))
        .map(|e| {
            let (ty, ugid) = match e.subject {
                super::AclSubject::User(u) => ("user", u),
                super::AclSubject::Group(g) => ("group", g),
                super::AclSubject::Token(t) => ("token", t),
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

/// A list parameter.
fn list_param(ctx: &Ctx<'_>, name: &str) -> Vec<String> {
    ctx.params
        .str(name)
        .map(|v| split_list(&v).map(str::to_string).collect())
        .unwrap_or_default()
}

/// `PUT /access/acl`: `perm-modify` on the path, then grant or revoke.
fn update_acl(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
fn read_permissions(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

/// `PUT /access/password`: a user changes its own password (confirming it with
/// `confirmation-password`), or one with `Realm.AllocateUser` and `User.Modify` changes another's;
/// only root changes root's, and `pam` users' passwords only root or the user.
fn change_password(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    let me = ctx.auth_id();
    check_formats(ctx, "PUT", "/access/password")?;
    let password = required(ctx, "password")?;
    // reauth_user_for_user_modification
    user_must_exist(ctx, &userid)?;
    acc(ctx)
        .check_user_enabled(&userid)
        .map_err(ApiError::internal)?;
    if userid == super::ROOT_USER && !ctx.is_root() {
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

// ------------------------------------------------------------------------------------------------
// Permission checks that the router's simple specs cannot express. They run at the pipeline's
// permission stage, before parameter validation, on the raw parameters, as PVE checks them. A
// missing identifying parameter is left to validation (400).

/// `['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify'], groups_param => 'create']]`.
fn perm_create_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_realm_alloc(ctx, &userid)?;
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::Create)
}

/// `['userid-group', ['User.Modify', 'Sys.Audit']]`.
fn perm_read_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_group(
        ctx,
        &userid,
        &["User.Modify", "Sys.Audit"],
        GroupsParam::None,
    )
}

/// `['userid-group', ['User.Modify'], groups_param => 'update']`.
fn perm_update_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::Update)
}

/// `['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify']]]`.
fn perm_delete_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_realm_alloc(ctx, &userid)?;
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::None)
}

/// `['or', ['userid-param', 'self'], ['perm', '/access/users/{userid}', ['User.Modify']]]`.
fn perm_own_or_user_modify(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    self_or_user_modify(ctx, &userid)
}

/// `['perm-modify', '{path}']`.
fn perm_update_acl(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(raw_path) = ctx.params.str("path") else {
        return Ok(()); // missing: parameter validation answers 400
    };
    let who = ctx.auth_id();
    // An unnormalizable path passes this check and fails parameter checks below, as in PVE.
    if let Some(p) = names::normalize_path(&raw_path)
        && !ctx.is_root()
        && !acc(ctx).check_perm_modify(&who, Some(&p))
    {
        let extra = if p.starts_with("/storage/") {
            "|Datastore.Allocate"
        } else if p.starts_with("/vms/") {
            "|VM.Allocate"
        } else if p.starts_with("/pool/") {
            "|Pool.Allocate"
        } else {
            ""
        };
        return Err(ApiError::perm(format!("{p}, Permissions.Modify{extra}")));
    }
    Ok(())
}

/// `['or', ['userid-param', 'self'], ['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify']]]]`.
fn perm_change_password(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    either(userid_self(ctx, &userid), || {
        userid_realm_alloc(ctx, &userid)?;
        userid_group(ctx, &userid, &["User.Modify"], GroupsParam::None)
    })
}
