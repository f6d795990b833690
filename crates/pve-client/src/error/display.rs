//! Pieces of the `Display` texts of [`PveError`](super::PveError): the missing privilege, the
//! per-parameter errors and the tail of a task log.

use std::collections::BTreeMap;

pub(super) fn permission_denied_text(
    path: Option<&str>,
    privileges: &[String],
    detail: Option<&str>,
    message: &str,
) -> String {
    let mut out = String::from("permission denied");
    if !privileges.is_empty() {
        out.push_str(": missing ");
        out.push_str(&privileges.join(" or "));
        if let Some(p) = path {
            out.push_str(" on ");
            out.push_str(p);
        }
    } else if let Some(p) = path {
        out.push_str(" on ");
        out.push_str(p);
    }
    if let Some(d) = detail {
        out.push_str(" (");
        out.push_str(d);
        out.push(')');
    }
    out.push_str(" — Proxmox said: ");
    out.push_str(message);
    out
}

pub(super) fn errors_text(message: &str, errors: &BTreeMap<String, String>) -> String {
    if errors.is_empty() {
        return message.to_owned();
    }
    let per_param: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{message} ({})", per_param.join("; "))
}

pub(super) fn log_tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; task log ends with: {}", tail.join(" | "))
    }
}
