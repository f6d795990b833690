//! Tasks: status, log and list of a finished task, several tasks' states from one list read, a failed start with the log tail in the
//! error, an injected lock timeout as a retryable task failure, and an unknown task.

use pve_client::api::tasks::TaskListQuery;
use pve_client::{ErrorKind, ExitStatus, PveError, Upid};
use serde_json::json;

use crate::support::{Harness, NODE, create_and_wait, expect_err, fast_wait, run, small_vm};

#[tokio::test]
async fn task_status_log_and_list_describe_a_finished_task() {
    let h = Harness::start().await;
    let root = h.root();
    let upid = create_and_wait(&root, 100, &small_vm("tasks-1")).await;
    let status = root.task_status(&upid).await.expect("task status");
    assert_eq!(status.upid, upid.to_string());
    assert_eq!(status.task_type, "qmcreate");
    assert_eq!(status.id, "100");
    assert_eq!(status.user, "root@pam");
    assert!(!status.is_running());
    assert_eq!(status.exit_status(), Some(ExitStatus::Ok));
    assert_eq!(u64::from(upid.pid as u32), status.pid);

    let log = root.task_log(&upid, 0, 0).await.expect("whole log");
    let total = log.total.expect("total");
    assert_eq!(total, log.lines.len() as u64);
    assert_eq!(log.lines.last().map(|l| l.t.as_str()), Some("TASK OK"));
    assert_eq!(log.lines[0].n, 1);
    let tail = root.task_log_tail(&upid, 1).await.expect("tail");
    assert_eq!(tail, ["TASK OK"]);

    let list = root
        .tasks(
            NODE,
            &TaskListQuery {
                vmid: Some(100),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("task list");
    let entry = list
        .iter()
        .find(|t| t.upid == upid.to_string())
        .expect("the create task is listed");
    assert_eq!(entry.status.as_deref(), Some("OK"));
    assert!(entry.endtime.is_some());
    let only_starts = root
        .tasks(
            NODE,
            &TaskListQuery {
                typefilter: Some("qmstart".into()),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("filtered list");
    assert!(only_starts.is_empty(), "{only_starts:?}");

    // Several tasks' states from one list read: a finished one with its exit status; one the
    // node never ran is absent (to be asked for by itself).
    let never: Upid = format!(
        "UPID:{NODE}:0000FFFF:0000FFFF:{:08X}:qmstart:999:root@pam:",
        upid.starttime
    )
    .parse()
    .expect("a UPID");
    let states = root
        .task_states(NODE, &[upid.clone(), never.clone()])
        .await
        .expect("task states");
    assert_eq!(states.get(&upid.to_string()), Some(&Some("OK".to_string())));
    assert!(!states.contains_key(&never.to_string()), "{states:?}");
}

#[tokio::test]
async fn a_start_beyond_the_node_memory_fails_its_task_with_the_log_tail() {
    let h = Harness::start().await;
    let root = h.root();
    let mut vm = small_vm("too-big");
    vm.memory_mib = Some(128 * 1024); // the node has 64 GiB
    create_and_wait(&root, 100, &vm).await;
    let upid = root.qemu_start(NODE, 100).await.expect("start is accepted");
    let e = expect_err(root.wait_task(&upid, &fast_wait()).await, "start task");
    match &e {
        PveError::TaskFailed {
            upid: failed,
            exit_status,
            log_tail,
            cause,
        } => {
            assert_eq!(failed, &upid.to_string());
            assert_eq!(exit_status, "start failed: QEMU exited with code 1");
            let last = log_tail.last().expect("a log tail");
            assert_eq!(last, &format!("TASK ERROR: {exit_status}"));
            assert!(
                log_tail
                    .iter()
                    .any(|l| l.contains("Cannot allocate memory")),
                "the log tail says why: {log_tail:?}"
            );
            assert_eq!(*cause, ErrorKind::TaskFailed);
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    assert!(!e.is_retryable(), "not enough memory is permanent");
    assert!(e.to_string().contains("Cannot allocate memory"), "{e}");
    let failed = root
        .tasks(
            NODE,
            &TaskListQuery {
                errors: Some(true),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("failed tasks");
    assert!(
        failed.iter().any(|t| t.upid == upid.to_string()),
        "{failed:?}"
    );
}

#[tokio::test]
async fn an_injected_lock_timeout_in_a_task_is_a_retryable_task_failure() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("locky")).await;
    h.faults(json!([{
        "path": "/nodes/{node}/qemu/{vmid}/status/start",
        "max_count": 1,
        "fault": {"kind": "task_failure",
                  "message": "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"}
    }]))
    .await;
    let upid = root.qemu_start(NODE, 100).await.expect("start accepted");
    let e = expect_err(root.wait_task(&upid, &fast_wait()).await, "start task");
    assert!(
        matches!(
            &e,
            PveError::TaskFailed {
                cause: ErrorKind::LockTimeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // The retry the caller decides on succeeds.
    run(&root, root.qemu_start(NODE, 100).await.expect("start")).await;
}

#[tokio::test]
async fn unknown_task_is_not_found() {
    let h = Harness::start().await;
    let root = h.root();
    let upid: Upid = "UPID:pve:00001234:00005678:6B000000:qmstart:100:root@pam:"
        .parse()
        .expect("a well-formed UPID");
    let e = expect_err(root.task_status(&upid).await, "status of an unknown task");
    assert!(matches!(e, PveError::NotFound { .. }), "{e:?}");
}
