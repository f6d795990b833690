//! Crashes of the controller (its task aborted, no graceful shutdown) while requests
//! provision: restarted at any step, or at each step in turn (VMID recorded, create running,
//! start running), it never makes a second VM for a request.

use std::time::Duration;

use kube::ResourceExt;
use pve_operator_api::MachineRequestStatus;
use serde_json::json;

use super::{assert_one_vm_per_request, vmid_of};
use crate::support::{Harness, small_spec, wait_for};

#[tokio::test]
async fn restarting_the_controller_at_any_step_never_duplicates_a_vm() {
    let mut h = Harness::start("crash").await;
    let names: Vec<String> = (0..4).map(|i| format!("crash-{i}")).collect();
    for name in &names {
        h.apply(
            name,
            json!({
                "memory": { "sizeMiB": 512 },
                "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
                "networks": [{ "name": "net0", "bridge": "vmbr0" }],
                "boot": { "network": {} },
            }),
        )
        .await;
    }
    // Crash repeatedly while the requests are provisioning, at whatever step each one is.
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(150 + 90 * round)).await;
        h.crash_controller().await;
        h.start_controller();
    }
    for name in &names {
        h.wait_ready(name).await;
    }
    let resources = h.pve.cluster_resources(None).await.expect("resources");
    for name in &names {
        let request = h.requests().get(name).await.expect("request");
        let uid = request.uid().expect("uid");
        let tagged: Vec<_> = resources
            .iter()
            .filter(|r| r.tag_list().iter().any(|t| t.contains(&uid)))
            .collect();
        assert_eq!(
            tagged.len(),
            1,
            "{name}: exactly one VM carries its marker: {tagged:#?}"
        );
    }
    h.stop().await;
}

/// Crashes the controller as soon as `request`'s status satisfies `at`, then restarts it.
async fn crash_when(
    h: &mut Harness,
    name: &str,
    what: &str,
    at: impl Fn(&MachineRequestStatus) -> bool,
) {
    wait_for(&h.requests(), name, what, |r| {
        r.status.as_ref().is_some_and(&at)
    })
    .await;
    h.crash_controller().await;
    h.start_controller();
}

/// Whether the status records a running task of `task_type`.
fn task_running(task_type: &'static str) -> impl Fn(&MachineRequestStatus) -> bool {
    move |s| {
        s.current_task
            .as_ref()
            .is_some_and(|t| t.task_type == task_type)
    }
}

#[tokio::test]
async fn a_crash_at_each_provisioning_step_still_ends_with_exactly_one_vm() {
    let mut h = Harness::start_with("crash-steps", |options| {
        // Slow tasks, so that each step lasts long enough to crash inside it.
        options.config.task_durations_ms.create = 1500;
        options.config.task_durations_ms.start = 1500;
    })
    .await;
    let names: Vec<String> = ["after-vmid", "during-create", "during-start"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    type Step = Box<dyn Fn(&MachineRequestStatus) -> bool>;
    let steps: [(&str, Step); 3] = [
        // After the VMID is chosen and recorded (the create may or may not have been sent).
        ("a recorded VMID", Box::new(|s| s.vmid.is_some())),
        // While the create task runs.
        ("a running create task", Box::new(task_running("qmcreate"))),
        // While the start task runs.
        ("a running start task", Box::new(task_running("qmstart"))),
    ];
    for (name, (what, at)) in names.iter().zip(&steps) {
        h.apply(name, small_spec()).await;
        crash_when(&mut h, name, what, at).await;
        h.wait_ready(name).await;
    }

    assert_one_vm_per_request(&h, &names).await;
    for name in &names {
        let request = h.requests().get(name).await.expect("request");
        let vmid = vmid_of(&request);
        assert!(h.vm_running(vmid).await, "{name} runs");
    }
    h.stop().await;
}
