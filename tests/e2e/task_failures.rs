//! Failed and slow Proxmox tasks, end to end: a task that cannot succeed is sent once per
//! generation of the spec (and again on the retry annotation), one that fails on a lock is sent
//! again, one that runs past `--task-deadline` is reported while the controller waits on, and
//! tasks running side by side are followed by one task-list read per round.

use std::future::Future;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::PatchParams;
use kube::runtime::wait::await_condition;
use pve_operator_api::{HasConditions, MachineRequest, Phase};
use pve_sim::config::Size;
use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};

use crate::support::{Harness, server_apply, small_spec, wait_condition, within};

/// Creates sent to Proxmox so far.
fn creates(h: &Harness) -> u64 {
    h.sim
        .stats()
        .requests_by_endpoint
        .get("POST /nodes/{node}/qemu")
        .copied()
        .unwrap_or_default()
}

/// The reasons of the Events about request `name`, oldest first.
async fn event_reasons(h: &Harness, name: &str) -> Vec<String> {
    h.events_about(name)
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// Awaits `future` for at most 60 s; on timeout, fails with what the request and the
/// simulator show (a guard against hangs, not a speed assertion).
async fn or_explain<T>(h: &Harness, name: &str, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(value) => value,
        Err(_) => {
            let request = h.requests().get_opt(name).await.ok().flatten();
            panic!(
                "timed out waiting for {what}; {name} is now {:#?}\nwith generation {:?}, annotations {:?}; creates sent: {}; Events: {:?}",
                request.as_ref().and_then(|r| r.status.as_ref()),
                request.as_ref().and_then(|r| r.metadata.generation),
                request.as_ref().map(|r| r.annotations().clone()),
                creates(h),
                event_reasons(h, name).await
            )
        }
    }
}

/// Waits until `status.failedTask` records a failure at `generation`.
async fn wait_failed_at(h: &Harness, name: &str, generation: i64) -> MachineRequest {
    let failed = move |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref())
            .and_then(|s| s.failed_task.as_ref())
            .is_some_and(|f| f.observed_generation == generation)
    };
    or_explain(
        h,
        name,
        &format!("the failed task of generation {generation} to be recorded"),
        await_condition(h.requests(), name, failed),
    )
    .await
    .expect("watch works")
    .expect("the request exists")
}

/// Waits until the controller has read the inventory `reads` more times (it reads it every
/// second once it works on a request): proof that it has been running for a while.
async fn wait_inventory_reads(h: &Harness, name: &str, reads: u64) {
    let from = h.calls("GET /cluster/resources");
    or_explain(h, name, "the controller to read the inventory", async {
        while h.calls("GET /cluster/resources") < from + reads {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_task_that_cannot_succeed_is_sent_once_per_generation_and_again_when_the_retry_annotation_changes()
 {
    // A 3 GiB storage: a 4 GiB disk does not fit, and the create task fails in the worker, as
    // Proxmox allocates volumes there.
    let mut h = Harness::start_with("task-permanent", |options| {
        for storage in &mut options.config.storages {
            if storage.id == "local-lvm" {
                storage.capacity = Size(3 << 30);
            }
        }
    })
    .await;
    let mut spec = small_spec();
    spec["disks"][0]["sizeGiB"] = 4.into();
    h.apply("too-big", spec.clone()).await;

    let request = wait_failed_at(&h, "too-big", 1).await;
    let status = request.status.expect("status");
    let failed = status.failed_task.as_ref().expect("failedTask");
    assert_eq!(failed.task_type, "qmcreate");
    assert_eq!(failed.reason, "NoSpaceOnStorage");
    assert!(
        failed.exit_status.contains("local-lvm"),
        "Proxmox's own text: {failed:?}"
    );
    assert_eq!(status.phase, Some(Phase::Failed));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NoSpaceOnStorage")
    );
    for part in [
        failed.upid.as_str(),
        "creating the VM",
        failed.exit_status.as_str(),
        "pve-operator.dev/retry",
        "change the spec",
    ] {
        assert!(
            ready.message.contains(part),
            "the condition names {part:?}: {}",
            ready.message
        );
    }
    assert!(
        event_reasons(&h, "too-big")
            .await
            .contains(&"NoSpaceOnStorage".to_string())
    );
    assert_eq!(creates(&h), 1, "the create was sent once");

    // Not sent again by a controller that starts later either: the record is in status.
    h.crash_controller().await;
    h.start_controller();
    wait_inventory_reads(&h, "too-big", 3).await;
    assert_eq!(
        creates(&h),
        1,
        "a restarted controller does not send it again"
    );

    // A new generation of the spec is tried once (and fails once more: still no space).
    spec["memory"]["sizeMiB"] = 384.into();
    h.apply("too-big", spec.clone()).await;
    wait_failed_at(&h, "too-big", 2).await;
    assert_eq!(creates(&h), 2, "one create for generation 2");
    assert!(
        event_reasons(&h, "too-big")
            .await
            .contains(&"Retrying".to_string())
    );

    // The admin grows the storage, then asks for a retry without touching the spec.
    h.sim.with_state(|state| {
        for storage in &mut state.config.storages {
            if storage.id == "local-lvm" {
                storage.capacity = Size(64 << 30);
            }
        }
    });
    let annotate = serde_json::json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "MachineRequest",
        "metadata": { "name": "too-big", "annotations": { "pve-operator.dev/retry": "1" } },
    });
    let retry = PatchParams::apply("e2e-retry");
    server_apply(&h.requests(), &retry, "too-big", &annotate)
        .await
        .expect("annotation set");
    let ready = |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref())
            .is_some_and(|s| s.is_ready())
    };
    let request = or_explain(
        &h,
        "too-big",
        "the retried request to become Ready",
        await_condition(h.requests(), "too-big", ready),
    )
    .await
    .expect("watch works")
    .expect("the request exists");
    assert_eq!(creates(&h), 3, "the retry sent the create once more");
    let status = request.status.expect("status");
    assert_eq!(status.failed_task, None, "the failure record is gone");
    assert_eq!(status.phase, Some(Phase::Running));
    h.stop().await;
}

#[tokio::test]
async fn a_task_that_fails_on_a_lock_timeout_is_sent_again_until_it_succeeds() {
    let h = Harness::start("task-transient").await;
    // The create worker's own flock (1 s) times out once, as with parallel operations on a VM.
    h.sim.set_faults(FaultConfig {
        seed: 1,
        rules: vec![FaultRule {
            method: Some("POST".into()),
            path: Some("/nodes/{node}/qemu".into()),
            rate: 1.0,
            max_count: Some(1),
            fault: FaultKind::TaskFailure {
                message: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
                    .into(),
            },
        }],
    });
    h.apply("locked-once", small_spec()).await;
    let request = h.wait_ready("locked-once").await;
    assert_eq!(creates(&h), 2, "the failed create was sent again, once");
    assert_eq!(request.status.and_then(|s| s.failed_task), None);
    h.stop().await;
}

#[tokio::test]
async fn a_task_past_its_deadline_is_reported_once_with_its_upid_and_still_waited_for() {
    let mut h = Harness::start_with_args(
        "task-deadline",
        |options| options.config.task_durations_ms.create = 120_000,
        |args| args.task_deadline = 1,
    )
    .await;
    h.apply("slow", small_spec()).await;
    let request = wait_condition(&h, "slow", "TaskOverdue", "True").await;
    let status = request.status.expect("status");
    let task = status
        .current_task
        .clone()
        .expect("the task is still recorded");
    let overdue = status
        .conditions
        .iter()
        .find(|c| c.type_ == "TaskOverdue")
        .expect("TaskOverdue");
    assert!(
        overdue.message.contains(&task.upid) && overdue.message.contains("still waiting"),
        "{}",
        overdue.message
    );
    let upid = task.upid.parse().expect("a UPID");
    assert!(
        h.pve
            .task_status(&upid)
            .await
            .expect("task status")
            .is_running(),
        "the task is neither stopped nor abandoned"
    );
    let overdue_events =
        |reasons: Vec<String>| reasons.iter().filter(|r| *r == "TaskOverdue").count();
    assert_eq!(overdue_events(event_reasons(&h, "slow").await), 1);

    // A controller started later measures the deadline from the UPID: still overdue, and not
    // announced twice.
    h.crash_controller().await;
    let polled = h.calls("GET /nodes/{node}/tasks/{upid}/status");
    h.start_controller_with(|args| args.task_deadline = 1);
    within("the new controller to track the task again", async {
        while h.calls("GET /nodes/{node}/tasks/{upid}/status") < polled + 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let request = h.requests().get("slow").await.expect("request");
    let status = request.status.expect("status");
    assert_eq!(status.current_task, Some(task));
    assert!(status.is_true("TaskOverdue"));
    assert_eq!(overdue_events(event_reasons(&h, "slow").await), 1);
    h.stop().await;
}

/// Several of the controller's tasks running on one node cost one task-list read per poll
/// round, not a status read per task: while two or more run, none is polled by itself.
#[tokio::test]
async fn tasks_running_side_by_side_on_a_node_are_followed_by_one_list_read_per_round() {
    let h = Harness::start_with("task-list", |options| {
        options.config.task_durations_ms.create = 2_000;
        options.config.task_durations_ms.start = 1_500;
    })
    .await;
    let names = ["side-a", "side-b", "side-c", "side-d"];
    for name in names {
        h.apply(name, small_spec()).await;
    }
    for name in names {
        h.wait_ready(name).await;
    }
    let lists = h.calls("GET /nodes/{node}/tasks");
    let one_by_one = h.calls("GET /nodes/{node}/tasks/{upid}/status");
    let tasks = h.sim.stats().tasks_started;
    assert!(tasks >= 8, "a create and a start each: {tasks}");
    assert!(lists > 0, "the node's task list was read");
    assert!(
        one_by_one < lists && one_by_one < tasks,
        "{one_by_one} status reads for {tasks} tasks, beside {lists} list reads: only a node's \
         lone task is read by itself"
    );
    h.stop().await;
}
