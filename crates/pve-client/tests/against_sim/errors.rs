//! Every error kind as the server produces it, in both PVE 8 error styles (the message in the
//! JSON body, or only in the HTTP reason phrase): not found, permission denied, invalid
//! parameters, already exists, conflicts, 5xx and proxy errors (GETs retried, writes never), lock
//! timeouts, not implemented, unknown nodes, an exhausted VMID range, and the edge cases of power,
//! resize, clone and the guest agent.

use pve_client::api::qemu::{CloneOptions, DiskSize};
use pve_client::api::vmconfig::{Disk, DiskSlot, Drive, VmConfig};
use pve_client::request::Method;
use pve_client::{ErrorKind, PveError};
use serde_json::{Value, json};

use crate::support::{
    Harness, NODE, create_and_wait, expect_create_err, expect_err, expect_start_to_fail,
    fast_cluster, fast_wait, run, small_vm, start_and_wait, stop_and_wait, update_sync,
};

/// `e` is a retryable [`PveError::Server`] with `status` and `message`.
#[track_caller]
fn assert_retryable_server_error(e: &PveError, status: u16, message: &str) {
    assert!(
        matches!(e, PveError::Server { status: s, message: m } if *s == status && m == message),
        "expected a {status} {message:?}, got {e:?}"
    );
    assert!(e.is_retryable(), "{e:?}");
}

async fn error_kinds_as_the_server_produces_them(json_error_message: bool) {
    let mut cfg = fast_cluster();
    cfg.json_error_message = json_error_message;
    let h = Harness::start_with(cfg).await;
    let root = h.root();

    let e = expect_err(root.qemu_config(NODE, 999).await, "missing VM");
    assert!(matches!(&e, PveError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("Configuration file 'nodes/pve/qemu-server/999.conf' does not exist"),
        "{e}"
    );

    // PermissionDenied with path and privilege: a token that may only audit.
    let secret = h
        .create_auditor(&root, "auditor@pve", "auditor-password", Some("ro"))
        .await
        .expect("secret");
    let auditor = h.token_client("auditor@pve!ro", &secret);
    auditor
        .qemu_config(NODE, 9000)
        .await
        .expect("the auditor may read");
    let e = expect_err(
        auditor.qemu_start(NODE, 9000).await,
        "start without VM.PowerMgmt",
    );
    match &e {
        PveError::PermissionDenied {
            path, privileges, ..
        } => {
            assert_eq!(path.as_deref(), Some("/vms/9000"));
            assert_eq!(privileges, &["VM.PowerMgmt".to_owned()]);
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(!e.is_retryable());
    let e = expect_create_err(&auditor, 120, "nope", "create without VM.Allocate").await;
    assert!(matches!(&e, PveError::PermissionDenied { .. }), "{e:?}");

    // InvalidParameters with Proxmox's per-parameter messages.
    let e = expect_err(
        root.qemu_create(
            NODE,
            120,
            &VmConfig::new().drive(
                DiskSlot::scsi(0).expect("scsi0"),
                Drive::Disk(Disk::new("local", 4.0)),
            ),
            false,
        )
        .await,
        "a disk on an ISO-only storage",
    );
    match &e {
        PveError::InvalidParameters { errors, .. } => {
            assert_eq!(
                errors.get("storage").map(String::as_str),
                Some("storage 'local' does not support vm images"),
                "{errors:?}"
            );
        }
        other => panic!("expected InvalidParameters, got {other:?}"),
    }
    let e = expect_err(
        Harness::raw(
            &root,
            Method::Post,
            "/nodes/{node}/qemu",
            &[("node", NODE)],
            &[("vmid", "120"), ("cores", "many"), ("frobnicate", "1")],
        )
        .await,
        "an untyped create with bad parameters",
    );
    match &e {
        PveError::InvalidParameters { message, errors } => {
            assert_eq!(message, "Parameter verification failed.");
            let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
            assert_eq!(keys, ["cores", "frobnicate"], "{errors:?}");
            assert!(
                errors["cores"].contains("type check ('integer') failed"),
                "{errors:?}"
            );
        }
        other => panic!("expected InvalidParameters, got {other:?}"),
    }
    assert!(!e.is_retryable());

    // AlreadyExists: a taken VMID, in create and in nextid?vmid.
    let e = expect_err(
        root.qemu_create(NODE, 9000, &small_vm("dup"), false).await,
        "create on a taken VMID",
    );
    assert!(matches!(&e, PveError::AlreadyExists { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("unable to create VM 9000 - VM 9000 already exists on node 'pve'"),
        "{e}"
    );
    assert!(!root.vmid_is_free(9000).await.expect("nextid?vmid=9000"));

    // Conflict: reboot of a stopped VM.
    let e = expect_err(root.qemu_reboot(NODE, 9000).await, "reboot a stopped VM");
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");

    // 5xx and proxy errors: GETs are retried, writes never.
    h.faults(json!([
        {"method": "GET", "path": "/version", "max_count": 2,
         "fault": {"kind": "error", "status": 500, "message": "cluster not ready - no quorum?"}},
        {"method": "POST", "path": "/nodes/{node}/qemu", "max_count": 1,
         "fault": {"kind": "error", "status": 500, "message": "cluster not ready - no quorum?"}},
        {"method": "GET", "path": "/cluster/resources",
         "fault": {"kind": "proxy", "status": 596, "reason": "Connection timed out"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1,
         "fault": {"kind": "lock_timeout"}}
    ]))
    .await;
    h.reset_stats().await;
    root.version()
        .await
        .expect("GET /version succeeds on the third attempt");
    h.expect_requests("GET /version", 3, "two retries").await;

    let e = expect_create_err(&root, 130, "quorum", "create during a 500").await;
    assert_retryable_server_error(&e, 500, "cluster not ready - no quorum?");
    h.expect_requests("POST /nodes/{node}/qemu", 1, "never resent")
        .await;

    let e = expect_err(
        root.cluster_resources(None).await,
        "resources behind a failing proxy",
    );
    assert_retryable_server_error(&e, 596, "Connection timed out");
    h.expect_requests("GET /cluster/resources", 4, "max_attempts GETs")
        .await;

    let e = expect_err(
        update_sync(
            &root,
            9000,
            &VmConfig {
                description: Some("x".into()),
                ..VmConfig::default()
            },
        )
        .await,
        "update during a lock timeout",
    );
    assert!(matches!(&e, PveError::LockTimeout { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout"),
        "{e}"
    );
    assert!(e.is_retryable());
    h.expect_requests(
        "PUT /nodes/{node}/qemu/{vmid}/config",
        1,
        "a PUT is never resent",
    )
    .await;
    let fired: Vec<u64> = serde_json::from_value(
        h.control(reqwest::Method::GET, "/faults", None).await["fired"].clone(),
    )
    .expect("fired counts");
    assert_eq!(fired, [2, 1, 4, 1]);

    // The message really came from where this style puts it.
    let raw = h
        .control
        .get(format!("{}/nodes/pve/qemu/999/config", h.sim.url()))
        .header(
            "Authorization",
            format!("PVEAPIToken=auditor@pve!ro={secret}"),
        )
        .send()
        .await
        .expect("raw request");
    assert_eq!(raw.status().as_u16(), 500);
    let body: Value = raw.json().await.expect("JSON error body");
    assert_eq!(
        body.get("message").is_some(),
        json_error_message,
        "error body of this style: {body}"
    );
}

#[tokio::test]
async fn error_kinds_with_the_message_in_the_json_body() {
    error_kinds_as_the_server_produces_them(true).await;
}

#[tokio::test]
async fn error_kinds_with_the_message_only_in_the_reason_phrase() {
    error_kinds_as_the_server_produces_them(false).await;
}

#[tokio::test]
async fn unknown_paths_nodes_and_an_exhausted_vmid_range_are_typed() {
    let mut cfg = fast_cluster();
    cfg.nextid.lower = 100;
    cfg.nextid.upper = 101;
    let h = Harness::start_with(cfg).await;
    let root = h.root();
    let e = expect_err(
        Harness::raw(
            &root,
            Method::Get,
            "/nodes/{node}/frobnicate",
            &[("node", NODE)],
            &[],
        )
        .await,
        "an endpoint PVE does not have",
    );
    assert!(matches!(&e, PveError::NotImplemented { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let e = expect_err(root.node_status("pve-nowhere").await, "an unknown node");
    assert!(matches!(&e, PveError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("hostname lookup 'pve-nowhere' failed"),
        "{e}"
    );

    assert_eq!(root.next_vmid().await.expect("the only free id"), 100);
    create_and_wait(&root, 100, &small_vm("last-one")).await;
    let e = expect_err(root.next_vmid().await, "nextid with the range used up");
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("unable to get any free VMID"), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn power_resize_clone_and_agent_edge_cases_have_the_right_kinds() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("edges")).await;
    let scsi0 = DiskSlot::scsi(0).expect("scsi0");

    // Guest agent: not configured is permanent; a stopped VM is a state conflict.
    let e = expect_err(
        root.qemu_agent_network(NODE, 100).await,
        "agent of a stopped VM",
    );
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");
    start_and_wait(&root, 100).await;
    let e = expect_err(
        root.qemu_agent_network(NODE, 100).await,
        "agent not configured",
    );
    assert!(
        matches!(&e, PveError::Conflict { message } if message == "No QEMU guest agent configured"),
        "{e:?}"
    );
    assert!(
        !e.is_retryable(),
        "configuring the agent is the fix, not retrying"
    );

    // Starting a running VM fails in the task, as a conflict; reboot and reset succeed.
    let e = expect_start_to_fail(&root, 100, "start of a running VM").await;
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, cause: ErrorKind::Conflict, .. }
            if exit_status == "VM 100 already running"),
        "{e:?}"
    );
    run(&root, root.qemu_reboot(NODE, 100).await.expect("reboot")).await;
    run(&root, root.qemu_reset(NODE, 100).await.expect("reset")).await;
    stop_and_wait(&root, 100).await;
    // Stopping a stopped VM is fine.
    stop_and_wait(&root, 100).await;

    // Resize: absolute sizes grow, shrinking fails in the task, permanently.
    let digest = root.qemu_config(NODE, 100).await.expect("cfg").digest;
    let task = root
        .qemu_resize(NODE, 100, scsi0, DiskSize::AbsoluteGib(3), Some(&digest))
        .await
        .expect("resize")
        .expect("a task");
    run(&root, task).await;
    assert_eq!(
        root.qemu_config(NODE, 100).await.expect("cfg").drives()[&scsi0]
            .1
            .as_deref(),
        Some("3G")
    );
    let task = root
        .qemu_resize(NODE, 100, scsi0, DiskSize::AbsoluteGib(2), None)
        .await
        .expect("resize")
        .expect("a task");
    let e = expect_err(root.wait_task(&task, &fast_wait()).await, "shrink");
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, .. } if exit_status == "shrinking disks is not supported"),
        "{e:?}"
    );
    assert!(!e.is_retryable());

    // Cloning onto a taken VMID.
    let e = expect_err(
        root.qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: 100,
                name: None,
                full: false,
                storage: None,
                target: None,
                pool: None,
                description: None,
            },
        )
        .await,
        "clone onto VM 100",
    );
    assert!(matches!(&e, PveError::AlreadyExists { .. }), "{e:?}");
}
