//! The lifecycle of a request: every example of `deploy/examples` becomes Ready with its config
//! (cores, memory, disks, NICs, power state, Events, guest addresses) and its deletion follows
//! its policy; changed cores and memory wait as pending until a restart policy applies them.

use std::time::Duration;

use kube::Api;
use kube::runtime::wait::await_condition;
use pve_operator_api::{HasConditions, MachineRequest};

use super::vmid_of;
use crate::support::{Harness, WithConditions, apply_forced, wait_condition, within};

#[tokio::test]
async fn every_example_becomes_ready_with_its_config_and_deletion_follows_its_policy() {
    let h = Harness::start("examples").await;
    let mut names = Vec::new();
    for file in [
        "small-iso-vm.yaml",
        "cloud-init-from-template.yaml",
        "stopped-vm.yaml",
        "multi-disk-multi-nic.yaml",
        "uefi-tpm-vm.yaml",
    ] {
        names.push(h.apply_example(file).await);
    }
    let mut vmids = Vec::new();
    for name in &names {
        let request = h.wait_ready(name).await;
        let vmid = vmid_of(&request);
        let config = h.vm_config(vmid).await.expect("the VM exists in Proxmox");
        let spec = &request.spec;
        assert_eq!(
            config.get("cores"),
            Some(spec.cpu.cores.to_string().as_str()),
            "{name}: cores"
        );
        assert_eq!(
            config.memory_mib(),
            Some(spec.memory.size_mib),
            "{name}: memory"
        );
        assert!(
            config.tags().contains(&"pve-operator"),
            "{name}: managed tag in {:?}",
            config.tags()
        );
        for disk in &spec.disks {
            let value = config.get(&disk.slot).unwrap_or_default();
            assert!(
                value.starts_with(&format!("{}:", disk.storage))
                    && value.contains(&format!("size={}G", disk.size_gib)),
                "{name}: {} is {value}",
                disk.slot
            );
        }
        if let Some(tpm) = &spec.firmware.tpm_state {
            let value = config.get("tpmstate0").unwrap_or_default();
            let version = serde_json::to_value(tpm.version).expect("version serialises");
            assert!(
                value.starts_with(&format!("{}:", tpm.storage))
                    && value.contains("size=4M")
                    && value.contains(&format!("version={}", version.as_str().unwrap_or("?"))),
                "{name}: tpmstate0 is {value}"
            );
        }
        for nic in &spec.networks {
            let value = config.get(&nic.name).unwrap_or_default();
            assert!(
                value.contains(&format!("bridge={}", nic.bridge)),
                "{name}: {} is {value}",
                nic.name
            );
        }
        let status = h.pve.qemu_status("pve", vmid).await.expect("status");
        let expect_running = spec.power_state == pve_operator_api::PowerState::Running;
        assert_eq!(status.is_running(), expect_running, "{name}: power state");
        vmids.push((name.clone(), vmid, spec.deletion_policy));
    }

    // Each step left an Event on its request.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(h.client.clone(), &h.namespace);
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("small-iso-vm"))
        .filter_map(|e| e.reason)
        .collect();
    for step in ["Creating", "TaskSucceeded", "Provisioned", "Starting"] {
        assert!(
            reasons.iter().any(|r| r == step),
            "an Event for {step}: {reasons:?}"
        );
    }

    // The guest agent answers once the guest has booted; its addresses then reach status.
    let with_ip = |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref())
            .is_some_and(|s| !s.ip_addresses.is_empty())
    };
    let request = within(
        "cloud-init-vm's IP address in status",
        await_condition(h.requests(), "cloud-init-vm", with_ip),
    )
    .await
    .expect("watch works")
    .expect("request exists");
    let ips = request.status.map(|s| s.ip_addresses).unwrap_or_default();
    assert!(
        ips.iter().all(|ip| !ip.starts_with("127.")),
        "no loopback addresses: {ips:?}"
    );

    for (name, vmid, policy) in vmids {
        h.delete_and_wait_gone(&name).await;
        match policy {
            pve_operator_api::DeletionPolicy::Delete => {
                assert!(!h.vm_exists(vmid).await, "{name}: VM {vmid} destroyed");
            }
            pve_operator_api::DeletionPolicy::Retain => {
                let config = h.vm_config(vmid).await.expect("a retained VM stays");
                assert!(
                    !config.tags().contains(&"pve-operator"),
                    "{name}: marker removed, tags {:?}",
                    config.tags()
                );
            }
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn changed_cores_and_memory_wait_as_pending_and_a_restart_policy_applies_them() {
    let h = Harness::start("spec-drift").await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let vmid = vmid_of(&h.wait_ready(&name).await);

    // More cores and memory on a running VM: Proxmox keeps them pending until a restart.
    let mut request = h.requests().get(&name).await.expect("request");
    request.spec.cpu.cores = 4;
    request.spec.memory.size_mib = 4096;
    request.metadata.managed_fields = None;
    request.metadata.resource_version = None;
    request.status = None;
    apply_forced(&h.requests(), "e2e-tests", &name, &request).await;
    let message = wait_condition(&h, &name, "RestartRequired", "True")
        .await
        .message_of("RestartRequired");
    assert!(
        message.contains("cores") && message.contains("memory"),
        "the condition names the pending keys: {message}"
    );
    let pending = h.pve.qemu_pending("pve", vmid).await.expect("pending");
    let cores = pending
        .iter()
        .find(|p| p.key == "cores")
        .expect("cores entry");
    assert_eq!(
        cores.pending.as_deref(),
        Some("4"),
        "cores=4 waits as a pending change"
    );
    assert!(h.vm_running(vmid).await, "Report does not restart");

    // With pendingChanges: Restart the controller restarts the VM and the changes take effect.
    request.spec.pending_changes = pve_operator_api::PendingChangePolicy::Restart;
    apply_forced(&h.requests(), "e2e-tests", &name, &request).await;
    within("the pending changes to be applied by a restart", async {
        loop {
            let config = h.pve.qemu_config("pve", vmid).await.expect("config");
            let pending = h.pve.qemu_pending("pve", vmid).await.expect("pending");
            let running = h.vm_running(vmid).await;
            if config.get("cores") == Some("4")
                && pending.iter().all(|p| p.pending.is_none())
                && running
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let request = wait_condition(&h, &name, "Ready", "True").await;
    let status = request.status.expect("status");
    assert!(
        !status.is_true("RestartRequired"),
        "RestartRequired is cleared: {:?}",
        status.conditions
    );
    h.stop().await;
}
