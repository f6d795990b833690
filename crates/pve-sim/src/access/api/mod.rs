//! The `/access` HTTP API as PVE 8.4 and 9.1 serve it (`API2/AccessControl.pm`, `User.pm`, `Group.pm`,
//! `Role.pm`, `ACL.pm`): users, tokens, groups, roles, ACLs, effective permissions and password
//! changes, with the permission checks of each method and PVE's error texts.
//!
//! Method-level checks that the router's [`Perm`] can express are declared on the route; the
//! `userid-param`/`userid-group`/`perm-modify` checks run first thing in the handler (root@pam
//! passes them all, as `check_api2_permissions` lets it).
//!
//! This module declares the routes and holds the helpers every handler uses; the handlers live
//! beside it by object (`users`, `tokens`, `groups`, `roles`, `acl`), with the named-format
//! checks of the parameters (`formats`) and the permission checks that name a user (`perms`).

use serde_json::{Value, json};

use super::{AccessControl, AccessError, split_list};
use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::version::PveVersion;

mod acl;
mod formats;
mod groups;
mod perms;
mod roles;
mod tokens;
mod users;

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
        route("GET", users, Perm::All, users::list_users),
        route(
            "POST",
            users,
            Perm::Custom(perms::perm_create_user),
            users::create_user,
        ),
        route(
            "GET",
            user,
            Perm::Custom(perms::perm_read_user),
            users::read_user,
        ),
        route(
            "PUT",
            user,
            Perm::Custom(perms::perm_update_user),
            users::update_user,
        ),
        route(
            "DELETE",
            user,
            Perm::Custom(perms::perm_delete_user),
            users::delete_user,
        ),
        route(
            "GET",
            tokens,
            Perm::Custom(perms::perm_own_or_user_modify),
            tokens::list_tokens,
        ),
        route(
            "GET",
            token,
            Perm::Custom(perms::perm_own_or_user_modify),
            tokens::read_token,
        ),
        route(
            "POST",
            token,
            Perm::Custom(perms::perm_own_or_user_modify),
            tokens::create_token,
        ),
        route(
            "PUT",
            token,
            Perm::Custom(perms::perm_own_or_user_modify),
            tokens::update_token,
        ),
        route(
            "DELETE",
            token,
            Perm::Custom(perms::perm_own_or_user_modify),
            tokens::delete_token,
        ),
        route("GET", "/access/groups", Perm::All, groups::list_groups),
        route("POST", "/access/groups", group_alloc, groups::create_group),
        route(
            "GET",
            "/access/groups/{groupid}",
            group_read,
            groups::read_group,
        ),
        route(
            "PUT",
            "/access/groups/{groupid}",
            group_alloc,
            groups::update_group,
        ),
        route(
            "DELETE",
            "/access/groups/{groupid}",
            group_alloc,
            groups::delete_group,
        ),
        route("GET", "/access/roles", Perm::All, roles::list_roles),
        route("POST", "/access/roles", sys_modify, roles::create_role),
        route("GET", "/access/roles/{roleid}", Perm::All, roles::read_role),
        route(
            "PUT",
            "/access/roles/{roleid}",
            sys_modify,
            roles::update_role,
        ),
        route(
            "DELETE",
            "/access/roles/{roleid}",
            sys_modify,
            roles::delete_role,
        ),
        route("GET", "/access/acl", Perm::All, acl::list_acl),
        route(
            "PUT",
            "/access/acl",
            Perm::Custom(perms::perm_update_acl),
            acl::update_acl,
        ),
        route(
            "GET",
            "/access/permissions",
            Perm::All,
            acl::read_permissions,
        ),
        route(
            "PUT",
            "/access/password",
            Perm::Custom(perms::perm_change_password),
            users::change_password,
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

/// A list parameter (split at `,`, `;` or whitespace), empty when absent.
fn list_param(ctx: &Ctx<'_>, name: &str) -> Vec<String> {
    ctx.params
        .str(name)
        .map(|v| split_list(&v).map(str::to_string).collect())
        .unwrap_or_default()
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
