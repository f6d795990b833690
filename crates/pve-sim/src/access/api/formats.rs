//! The checks of the named formats and minimum lengths of the `/access` parameter tables that the
//! generic validator does not know, with PVE's messages.

use crate::access::{names, params, split_list};
use crate::error::ApiError;
use crate::router::Ctx;
use crate::version::PveVersion;

/// The minimum length (`minLength`) of parameter `name` of `method path` in `version`'s schema.
fn min_length(version: PveVersion, method: &str, path: &str, name: &str) -> Option<usize> {
    match version {
        PveVersion::Pve8_4 => params::min_length(method, path, name),
        PveVersion::Pve9_1 => crate::access::params_9_1::min_length(method, path, name),
    }
}

/// The checks of the named formats and minimum lengths of the `/access` tables that the generic
/// validator does not know, with PVE's messages (`JSONSchema::check_format`).
pub(super) fn check_formats(ctx: &Ctx<'_>, method: &str, path: &str) -> Result<(), ApiError> {
    let version = ctx.sim.state.config.pve_version;
    let Some(table) = crate::access::param_table_for(version, method, path) else {
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
        "pve-priv" if !crate::access::is_valid_privilege(version, v) => {
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
        "pve-storage-id" if !crate::access::names::is_valid_storeid(v) => {
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
