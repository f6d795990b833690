//! From what Proxmox said to a [`PveError`] variant: the status, the reason phrase and the JSON
//! body of an error response (or a task's exit status), with the message texts PVE 8 and 9 use.

use std::collections::BTreeMap;

use super::{ErrorKind, MAX_PARAMETER_ERRORS, PveError, clip};

impl PveError {
    /// Builds the error for a non-2xx response from its status, its HTTP/1 reason phrase (when the
    /// server sent one) and its body (empty, `{"data":null}`, with `errors` and/or `message`).
    pub fn from_response(status: u16, reason_phrase: Option<&str>, body: &[u8]) -> PveError {
        let parsed = ErrorBody::parse(body);
        let message = parsed
            .message
            .map(|m| clip(m.trim_end()))
            .filter(|m| !m.is_empty())
            .or_else(|| {
                reason_phrase
                    .map(|r| clip(r.trim()))
                    .filter(|r| !r.is_empty())
            })
            .unwrap_or_else(|| canonical_reason(status).to_owned());
        classify(status, message, parsed.errors)
    }

    /// Builds [`PveError::TaskFailed`], classifying the exit status text like an API message.
    pub fn task_failed(
        upid: impl Into<String>,
        exit_status: impl Into<String>,
        log_tail: Vec<String>,
    ) -> PveError {
        let exit_status = clip(&exit_status.into());
        // A task that ran and failed for a reason not recognised as transient is not retried
        // blindly: unknown task errors are permanent, unlike unknown HTTP 5xx answers.
        let cause = match classify(500, exit_status.clone(), BTreeMap::new()).kind() {
            ErrorKind::Server => ErrorKind::TaskFailed,
            kind => kind,
        };
        PveError::TaskFailed {
            upid: upid.into(),
            exit_status,
            log_tail,
            cause,
        }
    }
}

fn canonical_reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unknown error")
}

#[derive(Default)]
struct ErrorBody {
    message: Option<String>,
    errors: BTreeMap<String, String>,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> ErrorBody {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
        else {
            return ErrorBody::default();
        };
        let message = match map.get("message") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let mut errors = BTreeMap::new();
        if let Some(serde_json::Value::Object(errs)) = map.get("errors") {
            for (k, v) in errs.iter().take(MAX_PARAMETER_ERRORS) {
                let text = match v {
                    serde_json::Value::String(s) => clip(s.trim_end()),
                    other => clip(&other.to_string()),
                };
                errors.insert(clip(k), text);
            }
        }
        ErrorBody { message, errors }
    }
}

/// Classifies a Proxmox message (from an HTTP error or a task exit status) into a kind.
fn classify(status: u16, message: String, errors: BTreeMap<String, String>) -> PveError {
    let lower = message.to_lowercase();
    match status {
        401 => return PveError::Unauthorized { reason: message },
        403 => return parse_permission_denied(message),
        404 => return PveError::NotFound { message, errors },
        501 | 506 => return PveError::NotImplemented { message },
        _ => {}
    }
    if !errors.is_empty() {
        let any = |pred: &dyn Fn(&str) -> bool| errors.values().any(|v| pred(&v.to_lowercase()));
        if any(&|v| v.contains("already exists")) {
            return PveError::AlreadyExists { message, errors };
        }
        if any(&|v| v.starts_with("no such ")) {
            return PveError::NotFound { message, errors };
        }
        if status == 400 {
            return PveError::InvalidParameters { message, errors };
        }
    }
    if lower.starts_with("permission check failed") {
        return parse_permission_denied(message);
    }
    if lower.starts_with("only root can") {
        return PveError::PermissionDenied {
            path: Some("/".to_owned()),
            privileges: Vec::new(),
            detail: Some(message.clone()),
            message,
        };
    }
    if lower.contains("already exists") {
        return PveError::AlreadyExists { message, errors };
    }
    if lower.contains("checksum mismatch") {
        return PveError::DigestMismatch { message };
    }
    if lower.contains("can't lock file") || lower.contains("unable to lock") {
        return PveError::LockTimeout { message };
    }
    if let Some(lock) = parse_locked(&message) {
        return PveError::Locked {
            lock: Some(lock),
            message,
        };
    }
    if lower.contains("does not exist")
        || lower.starts_with("no such ")
        || lower.contains(": no such ")
        || lower.starts_with("hostname lookup '")
    {
        return PveError::NotFound { message, errors };
    }
    // qemu-server's `assert_agent_available`: the agent is configured and the VM runs, but the
    // guest has not started its agent (yet). Transient, unlike "VM 100 not running" below.
    if lower.contains("guest agent is not running") && status >= 500 {
        return PveError::Server { status, message };
    }
    if lower.contains("is running - destroy failed")
        || lower.contains(" not running")
        || lower.contains("already running")
        || lower.contains("is paused")
        || lower.contains("protection mode enabled")
        || lower.contains("used in ha resources")
        || lower.contains("is a template")
        || lower.contains("if it's a template")
        || lower.contains("unable to get any free vmid")
        || lower.starts_with("no qemu guest agent configured")
    {
        return PveError::Conflict { message };
    }
    if lower == "no options specified" {
        return PveError::InvalidParameters { message, errors };
    }
    if lower.contains("got timeout") {
        return PveError::Timeout { message };
    }
    if status == 400 {
        return PveError::InvalidParameters { message, errors };
    }
    if status >= 500 {
        return PveError::Server { status, message };
    }
    PveError::Api {
        status,
        message,
        errors,
    }
}

/// `VM is locked (create)` / `CT is locked (backup)` → the lock name.
fn parse_locked(message: &str) -> Option<String> {
    let idx = message.find("is locked (")?;
    let rest = &message[idx + "is locked (".len()..];
    let end = rest.find(')')?;
    let lock = &rest[..end];
    (!lock.is_empty()).then(|| lock.to_owned())
}

/// Parses the forms of `Permission check failed (...)` that PVE 8 produces:
/// `(/vms/100, VM.Allocate)`, `(/vms/100, A|B)`, `(/, Sys.Modify for modifying tag 'x')`,
/// `(pool 'foo' does not exist)`, `(URI '...' not available with API token, need proper ticket.`
/// (no closing parenthesis), and the bare `Permission check failed`.
fn parse_permission_denied(message: String) -> PveError {
    let mut path = None;
    let mut privileges = Vec::new();
    let mut detail = None;
    if let Some(open) = message.find('(') {
        let inner = message[open + 1..].trim_end();
        let inner = inner.strip_suffix(')').unwrap_or(inner).trim();
        match inner.split_once(", ") {
            Some((p, rest)) if p.starts_with('/') && !p.contains(char::is_whitespace) => {
                path = Some(p.to_owned());
                let (privs, more) = match rest.split_once(' ') {
                    Some((privs, more)) => (privs, Some(more.trim())),
                    None => (rest, None),
                };
                privileges = privs
                    .split('|')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                detail = more.filter(|m| !m.is_empty()).map(str::to_owned);
            }
            _ if !inner.is_empty() => detail = Some(inner.to_owned()),
            _ => {}
        }
    }
    PveError::PermissionDenied {
        path,
        privileges,
        detail,
        message,
    }
}
