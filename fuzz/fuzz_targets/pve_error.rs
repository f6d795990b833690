//! How an HTTP error answer of Proxmox becomes a `PveError` (`PveError::from_response`), and a
//! task exit status a `TaskFailed` (`PveError::task_failed`): never a panic, the kind the status
//! fixes (401, 403, 404, 501/506), and Proxmox's own message (the JSON `message`, else the reason
//! phrase, else the canonical phrase) and every per-parameter error reach the user in the text.
//!
//! Input: the first line is `STATUS[ REASON]` (no space: no reason phrase), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pve_client::{ErrorKind, PveError};

fn message_of(body: &[u8]) -> Option<String> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let serde_json::Value::String(m) = map.get("message")? else {
        return None;
    };
    Some(m.trim_end().to_owned()).filter(|m| !m.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let (status, reason) = match head.split_once(' ') {
        Some((s, r)) => (s, Some(r)),
        None => (head, None),
    };
    let Ok(status) = status.parse::<u16>() else {
        return;
    };
    let e = PveError::from_response(status, reason, body);
    let text = e.to_string();
    let _ = (format!("{e:?}"), e.is_retryable());
    let expected_kind = match status {
        401 => Some(ErrorKind::Unauthorized),
        403 => Some(ErrorKind::PermissionDenied),
        404 => Some(ErrorKind::NotFound),
        501 | 506 => Some(ErrorKind::NotImplemented),
        _ => None,
    };
    if let Some(kind) = expected_kind {
        assert_eq!(e.kind(), kind, "HTTP {status}: {e:?}");
    }
    let message = message_of(body).or_else(|| {
        reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
    });
    if let Some(m) = &message {
        assert!(
            text.contains(m.as_str()),
            "Proxmox's message {m:?} is lost: {text:?}"
        );
    }
    match &e {
        PveError::InvalidParameters { errors, .. }
        | PveError::NotFound { errors, .. }
        | PveError::AlreadyExists { errors, .. }
        | PveError::Api { errors, .. } => {
            for (k, v) in errors {
                assert!(
                    text.contains(&format!("{k}: {v}")),
                    "the error of {k:?} is lost: {text:?}"
                );
            }
        }
        PveError::Server { status: s, .. } => {
            assert!(*s >= 500, "HTTP {s} is not a server error");
            assert_eq!(e.is_retryable(), *s != 599);
        }
        _ => {}
    }
    if status == 400 && e.kind() == ErrorKind::Server {
        panic!("HTTP 400 classified as a server error: {e:?}");
    }

    // The same text as a task's exit status.
    let exit = String::from_utf8_lossy(body).into_owned();
    let tail: Vec<String> = head.lines().map(str::to_owned).collect();
    let failed = PveError::task_failed(
        "UPID:pve:00000001:00000001:00000001:qmstart:100:root@pam:",
        exit.clone(),
        tail,
    );
    let shown = failed.to_string();
    assert!(shown.contains(&exit), "the exit status is lost: {shown:?}");
    match &failed {
        PveError::TaskFailed { cause, .. } => {
            assert_ne!(
                *cause,
                ErrorKind::Server,
                "an unrecognised task error counts as transient"
            )
        }
        other => panic!("task_failed built {other:?}"),
    }
});
