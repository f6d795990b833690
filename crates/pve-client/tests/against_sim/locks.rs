//! Config locks: a running create task holds the lock (updates time out, retryably; waiting for
//! the task times out), and a VM locked by a backup refuses updates and fails its start task.

use std::time::Duration;

use pve_client::api::tasks::WaitOptions;
use pve_client::api::vmconfig::VmConfig;
use pve_client::{ErrorKind, PveError};

use crate::support::{
    Harness, NODE, create_and_wait, expect_err, expect_start_to_fail, fast_cluster, fast_wait,
    small_vm, update_sync,
};

/// The update both tests try on a locked VM.
fn two_cores() -> VmConfig {
    VmConfig {
        cores: Some(2),
        ..VmConfig::default()
    }
}

#[tokio::test]
async fn a_running_create_task_holds_the_config_lock_and_updates_time_out_retryably() {
    let mut cfg = fast_cluster();
    cfg.task_durations_ms.create = 60_000; // the create task holds the lock for the whole test
    cfg.flock_timeout_ms = 300; // PVE waits 10 s for the flock
    let h = Harness::start_with(cfg).await;
    let root = h.root();
    let upid = root
        .qemu_create(NODE, 100, &small_vm("creating"), false)
        .await
        .expect("create accepted");
    let cfg = root
        .qemu_config(NODE, 100)
        .await
        .expect("config while creating");
    assert_eq!(cfg.lock(), Some("create"));
    assert_eq!(
        root.qemu_status(NODE, 100)
            .await
            .expect("status")
            .lock
            .as_deref(),
        Some("create")
    );
    let e = expect_err(
        update_sync(&root, 100, &two_cores()).await,
        "update while the create task holds the lock",
    );
    assert!(matches!(&e, PveError::LockTimeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    h.expect_requests(
        "PUT /nodes/{node}/qemu/{vmid}/config",
        1,
        "the write was not resent",
    )
    .await;
    assert!(root.task_status(&upid).await.expect("status").is_running());
    let e = expect_err(
        root.wait_task(
            &upid,
            &WaitOptions {
                timeout: Some(Duration::from_millis(200)),
                ..fast_wait()
            },
        )
        .await,
        "waiting past the deadline",
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_vm_with_a_config_lock_refuses_updates_and_starts_with_locked() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("backed-up")).await;
    // A backup job has locked the VM (set up directly in the simulator's state).
    h.sim.with_state(|s| {
        s.vms.get_mut(&100).expect("VM 100").lock = Some("backup".into());
    });
    let cfg = root.qemu_config(NODE, 100).await.expect("config");
    assert_eq!(cfg.lock(), Some("backup"));
    let e = expect_err(
        update_sync(&root, 100, &two_cores()).await,
        "update of a locked VM",
    );
    assert!(
        matches!(&e, PveError::Locked { lock: Some(l), .. } if l == "backup"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let e = expect_start_to_fail(&root, 100, "start task").await;
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, cause: ErrorKind::Locked, .. }
            if exit_status == "VM is locked (backup)"),
        "{e:?}"
    );
    assert!(e.is_retryable());
}
