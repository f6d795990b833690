//! Every error example of `wire-behaviour.md`, in both PVE 8.x styles.

use super::*;

/// The pre-5.2.0 style: message only in the reason phrase, body `{"data":null}` (+ `errors`).
fn old_style(status: u16, reason: &str, errors: Option<&str>) -> PveError {
    let body = match errors {
        Some(e) => format!(r#"{{"data":null,"errors":{e}}}"#),
        None => r#"{"data":null}"#.to_owned(),
    };
    PveError::from_response(status, Some(reason), body.as_bytes())
}

/// The 5.2.0+ style: also `message` (full, ending with `\n`) in the JSON body.
fn new_style(status: u16, message: &str, errors: Option<&str>) -> PveError {
    let first_line = message.lines().next().unwrap_or_default();
    let msg = serde_json::to_string(&format!("{message}\n")).unwrap();
    let body = match errors {
        Some(e) => format!(r#"{{"data":null,"errors":{e},"message":{msg}}}"#),
        None => format!(r#"{{"data":null,"message":{msg}}}"#),
    };
    PveError::from_response(status, Some(first_line), body.as_bytes())
}

fn both(status: u16, message: &str, errors: Option<&str>) -> [PveError; 2] {
    [
        old_style(status, message, errors),
        new_style(status, message, errors),
    ]
}

/// Each of `msgs`, with `status` in both error styles, is of `kind` and `retryable` or not.
#[track_caller]
fn assert_classified(status: u16, msgs: &[&str], kind: ErrorKind, retryable: bool) {
    for msg in msgs {
        for e in both(status, msg, None) {
            assert_eq!(e.kind(), kind, "{msg}");
            assert_eq!(e.is_retryable(), retryable, "{msg}: retryable");
        }
    }
}

#[test]
fn auth_failures_of_both_server_generations_are_unauthorized_with_the_reason() {
    for reason in [
        "No ticket",
        "permission denied - invalid PVE ticket",
        "Authentication failed!",
        "user 'x@pve' is disabled",
        "invalid token value!",
        "no such token 'tok' for user 'u@pve'",
        "no such user ('u@pve')",
        "token 'tok' access expired",
        "no tokenid specified",
        "Permission denied - invalid csrf token",
    ] {
        // auth_handler failures: no body at all.
        let e = PveError::from_response(401, Some(reason), b"");
        match &e {
            PveError::Unauthorized { reason: r } => assert_eq!(r, reason),
            other => panic!("{reason}: {other:?}"),
        }
        assert!(!e.is_retryable());
        assert!(e.to_string().contains(reason));
    }
}

#[test]
fn ticket_login_failure_is_unauthorized_in_both_styles() {
    for e in both(401, "authentication failure", None) {
        match e {
            PveError::Unauthorized { reason } => assert_eq!(reason, "authentication failure"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn permission_check_failed_yields_path_and_privilege() {
    for e in both(403, "Permission check failed (/vms/100, VM.Allocate)", None) {
        match &e {
            PveError::PermissionDenied {
                path,
                privileges,
                detail,
                ..
            } => {
                assert_eq!(path.as_deref(), Some("/vms/100"));
                assert_eq!(privileges, &["VM.Allocate"]);
                assert_eq!(detail, &None);
            }
            other => panic!("{other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains("VM.Allocate") && text.contains("/vms/100"),
            "{text}"
        );
        assert!(!e.is_retryable());
    }
}

#[test]
fn permission_check_any_yields_every_alternative_privilege() {
    for e in both(
        403,
        "Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CDROM|VM.Config.Cloudinit)",
        None,
    ) {
        match e {
            PveError::PermissionDenied {
                path, privileges, ..
            } => {
                assert_eq!(path.as_deref(), Some("/vms/100"));
                assert_eq!(
                    privileges,
                    ["VM.Config.Disk", "VM.Config.CDROM", "VM.Config.Cloudinit"]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn permission_denied_other_forms() {
    type Case<'a> = (&'a str, Option<&'a str>, &'a [&'a str], Option<&'a str>);
    let cases: [Case; 5] = [
        ("Permission check failed", None, &[], None),
        (
            "Permission check failed (pool 'foo' does not exist)",
            None,
            &[],
            Some("pool 'foo' does not exist"),
        ),
        (
            "Permission check failed (/, Sys.Modify for modifying tag 'x')",
            Some("/"),
            &["Sys.Modify"],
            Some("for modifying tag 'x'"),
        ),
        (
            "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.",
            None,
            &[],
            Some("URI '/access/ticket' not available with API token, need proper ticket."),
        ),
        (
            "Permission check failed (/nodes/pve, Sys.Audit)",
            Some("/nodes/pve"),
            &["Sys.Audit"],
            None,
        ),
    ];
    for (msg, want_path, want_privs, want_detail) in cases {
        for e in both(403, msg, None) {
            match e {
                PveError::PermissionDenied {
                    path,
                    privileges,
                    detail,
                    message,
                } => {
                    assert_eq!(path.as_deref(), want_path, "{msg}");
                    assert_eq!(privileges, want_privs, "{msg}");
                    assert_eq!(detail.as_deref(), want_detail, "{msg}");
                    assert_eq!(message, msg);
                }
                other => panic!("{msg}: {other:?}"),
            }
        }
    }
}

#[test]
fn parameter_verification_failed_keeps_per_parameter_messages() {
    for errors in [
        r#"{"vmid":"value must have a minimum value of 100"}"#,
        r#"{"name":"invalid format - value does not look like a valid DNS name\n"}"#,
        r#"{"type":"value 'x' does not have a value in the enumeration 'vm, storage, node, sdn'"}"#,
        r#"{"skiplock":"Only root may use this option."}"#,
        r#"{"storage":"storage 'x' does not support vm images"}"#,
        r#"{"upid":"unable to parse worker upid"}"#,
        r#"{"delete":"you can't use '-x' and -delete x' at the same time"}"#,
        r#"{"foo":"property is not defined in schema and the schema does not allow additional properties"}"#,
        r#"{"path":"missing property - 'path' requires this property"}"#,
        r#"{"memory":"type check ('integer') failed - got 'abc'\\nvalue must have a minimum value of 16"}"#,
        r#"{"description":"value may only be 8192 characters long"}"#,
        r#"{"newid":"invalid format - value does not look like a valid VM ID\n"}"#,
        r#"{"vmid":"value must have a maximum value of 999999999"}"#,
        r#"{"_root":"no options specified"}"#,
    ] {
        for e in both(400, "Parameter verification failed.", Some(errors)) {
            match &e {
                PveError::InvalidParameters {
                    message,
                    errors: map,
                } => {
                    assert_eq!(message, "Parameter verification failed.");
                    let want: BTreeMap<String, String> = serde_json::from_str(errors).unwrap();
                    let (k, v) = want.iter().next().unwrap();
                    assert_eq!(
                        map.get(k).map(String::as_str),
                        Some(v.trim_end()),
                        "{errors}"
                    );
                    assert!(e.to_string().contains(k.as_str()), "{e}");
                }
                other => panic!("{errors}: {other:?}"),
            }
            assert!(!e.is_retryable());
        }
    }
}

#[test]
fn nextid_taken_vmid_is_already_exists() {
    // Real capture (go-proxmox pve8x/cluster.go): no message in the body.
    let e = PveError::from_response(
        400,
        Some("Parameter verification failed."),
        br#"{"errors":{"vmid":"VM 200 already exists"},"data":null}"#,
    );
    match e {
        PveError::AlreadyExists { errors, .. } => {
            assert_eq!(errors["vmid"], "VM 200 already exists")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_such_storage_and_no_such_task_are_not_found() {
    for errors in [
        r#"{"storage":"No such storage."}"#,
        r#"{"upid":"no such task"}"#,
    ] {
        for e in both(400, "Parameter verification failed.", Some(errors)) {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{errors}: {e:?}");
        }
    }
}

#[test]
fn create_on_taken_vmid_is_already_exists() {
    let msgs = [
        "unable to create VM 100 - VM 100 already exists on node 'pve'",
        "unable to create VM 107: config file already exists",
    ];
    assert_classified(500, &msgs, ErrorKind::AlreadyExists, false);
}

#[test]
fn missing_config_storage_or_node_is_not_found() {
    for msg in [
        "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist",
        "Configuration file 'nodes/pve-mp/qemu-server/117.conf' does not exist",
        "storage 'x' does not exist",
        "hostname lookup 'foo' failed - failed to get address info for: foo: Name or service not known",
    ] {
        for e in both(500, msg, None) {
            match &e {
                PveError::NotFound { message, .. } => assert_eq!(message, msg),
                other => panic!("{msg}: {other:?}"),
            }
        }
    }
}

#[test]
fn lock_timeout_is_retryable_in_both_styles() {
    // Real pre-5.2 capture (WHMCS#83): message only in the reason phrase.
    let msg = "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout";
    for e in both(500, msg, None) {
        match &e {
            PveError::LockTimeout { message } => assert_eq!(message, msg),
            other => panic!("{other:?}"),
        }
        assert!(e.is_retryable());
    }
}

#[test]
fn locked_config_names_the_lock_and_is_retryable() {
    for (msg, lock) in [
        ("VM is locked (create)", "create"),
        ("VM is locked (snapshot-delete)", "snapshot-delete"),
    ] {
        for e in both(500, msg, None) {
            match &e {
                PveError::Locked { lock: l, .. } => assert_eq!(l.as_deref(), Some(lock)),
                other => panic!("{other:?}"),
            }
            assert!(e.is_retryable());
        }
    }
}

#[test]
fn digest_mismatch_is_its_own_kind() {
    assert_classified(
        500,
        &["checksum mismatch (file change by other user?)"],
        ErrorKind::DigestMismatch,
        false,
    );
}

#[test]
fn state_conflicts_are_conflict_not_retryable() {
    let msgs = [
        "VM 100 is running - destroy failed",
        "VM 100 not running",
        "VM is paused - cannot shutdown",
        "can't remove VM 100 - protection mode enabled",
        "unable to remove VM 100 - used in HA resources and purge parameter not set.",
        // qemu-server Agent.pm `assert_agent_available`: the VM's config has no agent.
        "No QEMU guest agent configured",
    ];
    assert_classified(500, &msgs, ErrorKind::Conflict, false);
}

#[test]
fn a_guest_agent_that_is_not_up_yet_is_transient() {
    // The agent is configured and the VM runs, but the guest has not started its agent yet.
    assert_classified(
        500,
        &["QEMU guest agent is not running"],
        ErrorKind::Server,
        true,
    );
}

#[test]
fn not_implemented_paths_and_request_forms() {
    for msg in [
        "Method 'GET /nodes/pve/foo' not implemented",
        "no such uri",
        "chunked transfer encoding not supported",
        "Unexpected content for method 'GET'",
        "method 'PATCH' not available",
        "for data too large",
    ] {
        for e in both(501, msg, None) {
            assert_eq!(e.kind(), ErrorKind::NotImplemented, "{msg}");
        }
    }
    let e = PveError::from_response(
        506,
        Some("upload 'Content-Type 'text/plain'' not implemented"),
        b"",
    );
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
}

#[test]
fn proxy_pseudo_statuses_are_retryable_server_errors_except_599() {
    for (status, msg) in [
        (595, "Connection refused"),
        (595, "No route to host"),
        (596, "Connection timed out"),
        (596, "Broken pipe"),
        (597, "Unexpected end-of-file"),
    ] {
        // The body is empty for proxy errors.
        let e = PveError::from_response(status, Some(msg), b"");
        match &e {
            PveError::Server { status: s, message } => {
                assert_eq!(*s, status);
                assert_eq!(message, msg);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_retryable(), "{status} {msg}");
    }
    let e = PveError::from_response(599, Some("other"), b"");
    assert!(!e.is_retryable());
}

#[test]
fn unclassified_500_keeps_the_full_json_message_and_is_retryable() {
    // Real post-5.2 capture (bpg client_test.go).
    let e = PveError::from_response(
        500,
        Some("create sdn zone object failed: 400 Parameter verification failed."),
        br#"{"message":"create sdn zone object failed: 400 Parameter verification failed.\nipam: ipam-simple not existing\n","data":null}"#,
    );
    match &e {
        PveError::Server { status, message } => {
            assert_eq!(*status, 500);
            assert_eq!(
                message,
                "create sdn zone object failed: 400 Parameter verification failed.\nipam: ipam-simple not existing"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_retryable());
    assert_classified(
        500,
        &["cluster not ready - no quorum?"],
        ErrorKind::Server,
        true,
    );
    assert_classified(
        500,
        &["unable to get any free VMID in range [100, 1000000]"],
        ErrorKind::Conflict,
        false,
    );
    for e in both(500, "no options specified", None) {
        assert_eq!(e.kind(), ErrorKind::InvalidParameters);
    }
}

#[test]
fn root_only_config_key_is_permission_denied() {
    for e in both(500, "only root can set 'args' config", None) {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
}

#[test]
fn missing_reason_falls_back_to_the_canonical_phrase() {
    let e = PveError::from_response(502, None, b"");
    match e {
        PveError::Server { message, .. } => assert_eq!(message, "Bad Gateway"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn task_failures_are_classified_by_exit_status() {
    let retry = PveError::task_failed(
        "UPID:pve:00061CB3:010BA69C:64EFECB0:qmstart:101:root@pam:",
        "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout",
        vec!["TASK ERROR: can't lock file".into()],
    );
    assert!(retry.is_retryable());
    let permanent = PveError::task_failed("UPID:x", "VM 100 already running", vec![]);
    assert!(!permanent.is_retryable());
    match permanent {
        PveError::TaskFailed { cause, .. } => assert_eq!(cause, ErrorKind::Conflict),
        other => panic!("{other:?}"),
    }
    let shown = PveError::task_failed(
        "U",
        "boom",
        vec!["line a".into(), "TASK ERROR: boom".into()],
    )
    .to_string();
    assert!(
        shown.contains("boom") && shown.contains("line a"),
        "{shown}"
    );
}

#[test]
fn decode_error_carries_a_bounded_body_excerpt() {
    let body = "x".repeat(2000);
    match PveError::decode("GET /version", "expected object", body.as_bytes()) {
        PveError::Decode {
            excerpt, reason, ..
        } => {
            assert_eq!(excerpt.chars().count(), BODY_EXCERPT_CHARS + 1);
            assert_eq!(reason, "expected object");
        }
        other => panic!("{other:?}"),
    }
    match PveError::decode("GET /version", "empty", b"") {
        PveError::Decode { excerpt, .. } => assert_eq!(excerpt, "<empty>"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn task_exit_texts_of_wire_behaviour_are_classified() {
    let cases = [
        ("VM 100 already running", ErrorKind::Conflict, false),
        (
            "you can't start a vm if it's a template",
            ErrorKind::Conflict,
            false,
        ),
        ("VM is locked (clone)", ErrorKind::Locked, true),
        (
            "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
            ErrorKind::LockTimeout,
            true,
        ),
        (
            "VM quit/powerdown failed - got timeout",
            ErrorKind::Timeout,
            true,
        ),
        ("disk 'scsi1' does not exist", ErrorKind::NotFound, false),
        (
            "unable to create VM 100 - VM 100 already exists on node 'pve'",
            ErrorKind::AlreadyExists,
            false,
        ),
        (
            "checksum mismatch (file change by other user?)",
            ErrorKind::DigestMismatch,
            false,
        ),
        (
            "shrinking disks is not supported",
            ErrorKind::TaskFailed,
            false,
        ),
        ("unexpected status", ErrorKind::TaskFailed, false),
    ];
    for (text, kind, retryable) in cases {
        let e = PveError::task_failed(
            "UPID:pve:00000001:00000001:00000001:qmstart:100:root@pam:",
            text,
            vec![],
        );
        match &e {
            PveError::TaskFailed {
                cause, exit_status, ..
            } => {
                assert_eq!(*cause, kind, "{text}");
                assert_eq!(exit_status, text);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.is_retryable(), retryable, "{text}");
    }
}
