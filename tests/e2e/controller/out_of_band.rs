//! Changes made in Proxmox behind the controller's back: a VM stopped is started again, a VM
//! destroyed is made again, and a foreign VM that took the recorded VMID is never touched.

use pve_operator_api::HasConditions;
use std::time::Duration;

use super::vmid_of;
use crate::support::{Harness, within};

#[tokio::test]
async fn a_vm_stopped_or_deleted_behind_the_controllers_back_is_started_or_recreated() {
    let h = Harness::start("drift").await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let vmid = vmid_of(&h.wait_ready(&name).await);

    // Stopped in Proxmox: the inventory notices and the controller starts it again.
    let upid = h
        .pve
        .qemu_stop("pve", vmid, &Default::default())
        .await
        .expect("stop");
    h.pve
        .wait_task(&upid, &Default::default())
        .await
        .expect("stopped");
    within("the VM to run again", async {
        loop {
            if h.pve
                .qemu_status("pve", vmid)
                .await
                .is_ok_and(|s| s.is_running())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    // Deleted in Proxmox: a new VM is made for the request. The controller may start the VM
    // again between our stop and our destroy (that is its job), so stop and destroy until the
    // destroy goes through.
    within(
        "the VM to be destroyed behind the controller's back",
        async {
            loop {
                let upid = h
                    .pve
                    .qemu_stop("pve", vmid, &Default::default())
                    .await
                    .expect("stop");
                h.pve
                    .wait_task(&upid, &Default::default())
                    .await
                    .expect("stopped");
                let destroyed = match h.pve.qemu_delete("pve", vmid, Default::default()).await {
                    Ok(upid) => h.pve.wait_task(&upid, &Default::default()).await.is_ok(),
                    Err(_) => false,
                };
                if destroyed && !h.vm_exists(vmid).await {
                    break;
                }
            }
        },
    )
    .await;
    within("a replacement VM", async {
        loop {
            let request = h.requests().get(&name).await.expect("request");
            let status = request.status.clone().unwrap_or_default();
            let ready = status.is_ready();
            // The replacement may reuse the VMID (it is free again) or get a new one.
            let current = status.vmid.unwrap_or(0);
            if ready
                && h.vm_exists(current).await
                && h.pve
                    .qemu_status("pve", current)
                    .await
                    .is_ok_and(|s| s.is_running())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_foreign_vm_at_the_recorded_vmid_is_never_touched() {
    let mut h = Harness::start("foreign").await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let request = h.wait_ready(&name).await;
    let vmid = vmid_of(&request);
    h.crash_controller().await;

    // Behind the controller's back: its VM goes, and someone else's VM takes the VMID.
    for step in ["stop", "delete"] {
        let upid = if step == "stop" {
            h.pve.qemu_stop("pve", vmid, &Default::default()).await
        } else {
            h.pve.qemu_delete("pve", vmid, Default::default()).await
        }
        .expect(step);
        h.pve
            .wait_task(&upid, &Default::default())
            .await
            .expect(step);
    }
    let foreign = pve_client::api::vmconfig::VmConfig {
        name: Some("someone-elses-vm".into()),
        memory_mib: Some(512),
        ..Default::default()
    };
    let upid = h
        .pve
        .qemu_create("pve", vmid, &foreign, false)
        .await
        .expect("foreign create");
    h.pve
        .wait_task(&upid, &Default::default())
        .await
        .expect("foreign VM created");
    let before = h.vm_config(vmid).await.expect("foreign VM");

    h.start_controller();
    let request = within("a new VM for the request", async {
        loop {
            let request = h.requests().get(&name).await.expect("request");
            let status = request.status.clone().unwrap_or_default();
            if status.vmid.is_some_and(|v| v != vmid) && status.is_ready() {
                break request;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let after = h
        .vm_config(vmid)
        .await
        .expect("the foreign VM is still there");
    assert_eq!(before.get("name"), after.get("name"));
    assert_eq!(
        before.digest, after.digest,
        "the foreign VM's config was not changed"
    );

    // Deleting the request removes only its own VM.
    let own = vmid_of(&request);
    h.delete_and_wait_gone(&name).await;
    assert!(!h.vm_exists(own).await, "own VM destroyed");
    assert!(h.vm_exists(vmid).await, "foreign VM kept");
    h.stop().await;
}
