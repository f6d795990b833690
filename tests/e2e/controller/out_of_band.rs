//! Changes made in Proxmox behind the controller's back: a VM stopped is started again, a VM
//! destroyed is made again, and a foreign VM that took the recorded VMID is never touched.

use pve_operator_api::HasConditions;
use std::time::Duration;

use super::vmid_of;
use crate::support::{Harness, until, within};

/// Whether Proxmox says VM `vmid` runs (false while it cannot say, e.g. during a re-create).
async fn runs_now(h: &Harness, vmid: u32) -> bool {
    h.pve
        .qemu_status("pve", vmid)
        .await
        .is_ok_and(|s| s.is_running())
}

#[tokio::test]
async fn a_vm_stopped_or_deleted_behind_the_controllers_back_is_started_or_recreated() {
    let h = Harness::start("drift").await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let vmid = vmid_of(&h.wait_ready(&name).await);

    // Stopped in Proxmox: the inventory notices and the controller starts it again.
    h.stop_vm(vmid).await;
    until("the VM to run again", || runs_now(&h, vmid)).await;

    // Deleted in Proxmox: a new VM is made for the request. The controller may start the VM
    // again between our stop and our destroy (that is its job), so stop and destroy until the
    // destroy goes through.
    within(
        "the VM to be destroyed behind the controller's back",
        async {
            loop {
                h.stop_vm(vmid).await;
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
    until("a replacement VM", || async {
        let request = h.requests().get(&name).await.expect("request");
        let status = request.status.clone().unwrap_or_default();
        // The replacement may reuse the VMID (it is free again) or get a new one.
        let current = status.vmid.unwrap_or(0);
        status.is_ready() && h.vm_exists(current).await && runs_now(&h, current).await
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
    h.stop_vm(vmid).await;
    h.destroy_vm(vmid).await;
    let foreign = pve_client::api::vmconfig::VmConfig {
        name: Some("someone-elses-vm".into()),
        memory_mib: Some(512),
        ..Default::default()
    };
    h.create_vm(vmid, &foreign).await;
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
