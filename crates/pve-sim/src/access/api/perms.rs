//! The permission checks of `RPCEnvironment::check_api2_permissions` that name a user
//! (`userid-param`, `userid-group`, `perm-modify`), and the method checks built from them that
//! the router's simple specs cannot express.

use super::{acc, list_param};
use crate::access::{AccessError, names};
use crate::error::ApiError;
use crate::router::Ctx;

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
pub(super) fn user_must_exist(ctx: &Ctx<'_>, userid: &str) -> Result<(), ApiError> {
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
pub(super) fn allowed_groups(ctx: &Ctx<'_>, privs: &[&str]) -> Vec<String> {
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
    let given = list_param(ctx, "groups");
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

// ------------------------------------------------------------------------------------------------
// Permission checks that the router's simple specs cannot express. They run at the pipeline's
// permission stage, before parameter validation, on the raw parameters, as PVE checks them. A
// missing identifying parameter is left to validation (400).

/// `['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify'], groups_param => 'create']]`.
pub(super) fn perm_create_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_realm_alloc(ctx, &userid)?;
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::Create)
}

/// `['userid-group', ['User.Modify', 'Sys.Audit']]`.
pub(super) fn perm_read_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
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
pub(super) fn perm_update_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::Update)
}

/// `['and', ['userid-param', 'Realm.AllocateUser'], ['userid-group', ['User.Modify']]]`.
pub(super) fn perm_delete_user(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    userid_realm_alloc(ctx, &userid)?;
    userid_group(ctx, &userid, &["User.Modify"], GroupsParam::None)
}

/// `['or', ['userid-param', 'self'], ['perm', '/access/users/{userid}', ['User.Modify']]]`.
pub(super) fn perm_own_or_user_modify(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    self_or_user_modify(ctx, &userid)
}

/// `['perm-modify', '{path}']`.
pub(super) fn perm_update_acl(ctx: &Ctx<'_>) -> Result<(), ApiError> {
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
pub(super) fn perm_change_password(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let Some(userid) = ctx.params.str("userid") else {
        return Ok(());
    };
    either(userid_self(ctx, &userid), || {
        userid_realm_alloc(ctx, &userid)?;
        userid_group(ctx, &userid, &["User.Modify"], GroupsParam::None)
    })
}
