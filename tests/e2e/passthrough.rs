//! PCI and USB passthrough by resource mapping, end to end: the VM's config holds `hostpciN` and
//! `usbN` by mapping, it is placed only on a node where every mapping has a device, and what
//! cannot be placed, is not visible, is not granted or is not allowed creates nothing (no VMID)
//! and says why, naming the mapping. Real kube-apiserver, pve-sim, the controller.

use pve_client::PveRelease;
use pve_operator::privileges::needs_for_specs;
use pve_operator_api::{MachineRequestSpec, Phase};
use pve_sim::config::{NodeConfig, Size};
use pve_sim::{MappingConfig, PveVersion, SimOptions};
use serde_json::{Value, json};

use crate::privileges::{denied, token_for, vmids};
use crate::support::{Harness, WithConditions, small_spec, wait_for, wait_reason};
use crate::tenancy::{cluster_condition, request_refused};

/// Three nodes: `pve` (the most free memory, so chosen first when nothing else decides),
/// `pve2` and `pve3`. The PCI mapping `gpu` has a device on `pve2` and `pve3`, the USB mapping
/// `key` on `pve` and `pve3`, and `gpu_away` only on a node that is not in the cluster; `vgpu`
/// (on `pve2`) is marked for mediated devices.
fn three_nodes(options: &mut SimOptions) {
    for name in ["pve2", "pve3"] {
        options.config.nodes.push(NodeConfig {
            name: name.into(),
            cpus: 16,
            memory: Size(16 << 30),
            bridges: vec!["vmbr0".into()],
            online: true,
        });
    }
    let mapping = |id: &str, entries: &[&str]| MappingConfig {
        id: id.into(),
        description: None,
        map: entries.iter().map(|e| (*e).to_string()).collect(),
        mdev: false,
    };
    options.config.mappings.pci = vec![
        mapping(
            "gpu",
            &[
                "node=pve2,path=0000:01:00.0,id=10de:24b0",
                "node=pve3,path=0000:41:00.0,id=10de:24b0",
            ],
        ),
        mapping("gpu_away", &["node=pve9,path=0000:01:00.0,id=10de:24b0"]),
        MappingConfig {
            mdev: true,
            ..mapping("vgpu", &["node=pve2,path=0000:81:00.0,id=10de:2236"])
        },
    ];
    options.config.mappings.usb = vec![mapping(
        "key",
        &["node=pve,id=1050:0407", "node=pve3,id=1050:0407"],
    )];
}

/// [`small_spec`] with `devices` (`pciDevices`, `usbDevices`) merged in.
fn spec_with(devices: Value) -> Value {
    let mut spec = small_spec();
    if let (Some(spec), Some(devices)) = (spec.as_object_mut(), devices.as_object()) {
        spec.extend(devices.clone());
    }
    spec
}

/// The config of VM `vmid` on `node`, read as root.
async fn config_on(h: &Harness, node: &str, vmid: u32) -> pve_client::api::vmconfig::VmConfigView {
    h.pve.qemu_config(node, vmid).await.expect("config")
}

fn gpu() -> Value {
    spec_with(json!({ "pciDevices": [{ "mapping": "gpu", "primaryGpu": true }] }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_with_passthrough_devices_lands_only_on_a_node_that_has_them() {
    let h = Harness::start_with("passthrough", three_nodes).await;
    let names = ["gpu-a", "gpu-b", "gpu-c", "gpu-d"];
    for name in names {
        h.apply(name, gpu()).await;
    }
    let both = spec_with(json!({
        "pciDevices": [{ "mapping": "gpu" }],
        "usbDevices": [{ "mapping": "key", "usb3": true }],
    }));
    h.apply("gpu-and-key", both).await;
    let vgpu = json!({ "pciDevices": [{ "mapping": "vgpu", "mdev": "nvidia-35" }] });
    h.apply("vgpu", spec_with(vgpu)).await;
    for name in names {
        let request = h.wait_ready(name).await;
        let status = request.status.expect("status");
        let node = status.node.expect("node");
        assert!(node == "pve2" || node == "pve3", "{name} is on {node}");
        let config = config_on(&h, &node, status.vmid.expect("vmid")).await;
        assert_eq!(
            config.get("hostpci0"),
            Some("mapping=gpu,x-vga=1"),
            "{name}"
        );
    }
    let request = h.wait_ready("gpu-and-key").await;
    let status = request.status.expect("status");
    assert_eq!(
        status.node.as_deref(),
        Some("pve3"),
        "the only node with both"
    );
    let config = config_on(&h, "pve3", status.vmid.expect("vmid")).await;
    assert_eq!(config.get("hostpci0"), Some("mapping=gpu"));
    assert_eq!(config.get("usb0"), Some("mapping=key,usb3=1"));
    let request = h.wait_ready("vgpu").await;
    let status = request.status.expect("status");
    assert_eq!(
        status.node.as_deref(),
        Some("pve2"),
        "the mdev mapping's node"
    );
    let config = config_on(&h, "pve2", status.vmid.expect("vmid")).await;
    assert_eq!(config.get("hostpci0"), Some("mapping=vgpu,mdev=nvidia-35"));

    // No node has the device, Proxmox lists no such mapping, or the mapping provides no
    // mediated devices: Pending, nothing created.
    let before = vmids(&h).await;
    let cases = [
        (
            "away",
            json!({ "mapping": "gpu_away" }),
            "NoNodeWithDevice",
            "spec.pciDevices[0].mapping \"gpu_away\" has a device on node pve9",
        ),
        (
            "gone",
            json!({ "mapping": "gpu_gone" }),
            "MappingNotFound",
            "spec.pciDevices[0].mapping \"gpu_gone\": Proxmox lists no PCI resource mapping",
        ),
        (
            "not-mediated",
            json!({ "mapping": "gpu", "mdev": "nvidia-35" }),
            "MappingWithoutMdev",
            "spec.pciDevices[0].mdev asks for the mediated device type \"nvidia-35\" of PCI mapping \"gpu\", which is not marked for mediated devices",
        ),
    ];
    for (name, device, reason, expected) in cases {
        h.apply(name, spec_with(json!({ "pciDevices": [device] })))
            .await;
        let request = wait_reason(&h.requests(), name, "Ready", reason).await;
        let message = request.message_of("Ready");
        assert!(message.contains(expected), "{name}: {message}");
        let status = request.status.expect("status");
        assert_eq!(status.phase, Some(Phase::Pending), "{name}");
        assert_eq!(status.vmid, None, "{name}: no VMID spent");
    }
    assert_eq!(vmids(&h).await, before, "nothing was created");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_mapping_use_on_the_mapping_is_told_so_and_creates_nothing() {
    for (version, release) in [
        (PveVersion::Pve8_4, PveRelease::PVE_8_4),
        (PveVersion::Pve9_1, PveRelease::NEWEST_CHECKED),
    ] {
        let typed: MachineRequestSpec = serde_json::from_value(gpu()).expect("a spec");
        let needs = needs_for_specs(std::slice::from_ref(&typed), release);
        let granted: Vec<_> = needs
            .iter()
            .filter(|n| n.path != "/mapping/pci/gpu")
            .cloned()
            .collect();
        assert!(granted.len() < needs.len(), "{release}: {needs:#?}");
        let sim = |o: &mut SimOptions| {
            three_nodes(o);
            o.config.pve_version = version;
        };
        let h = Harness::start_with_sim_and_config("passthrough-denied", sim, async |sim| {
            token_for(sim, &granted).await
        })
        .await;
        // The token may neither see nor use the mapping: told before anything is sent.
        let before = vmids(&h).await;
        h.apply("gpu", gpu()).await;
        let request = wait_for(&h.requests(), "gpu", "PrivilegesSufficient=False", |r| {
            denied(r).is_some()
        })
        .await;
        let message = denied(&request).unwrap_or_default();
        assert!(
            message.contains("Mapping.Use on /mapping/pci/gpu"),
            "{release}: {message}"
        );
        assert_eq!(request.status.and_then(|s| s.vmid), None, "{release}");
        assert_eq!(vmids(&h).await, before, "{release}: nothing was created");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_passes_through_only_the_mappings_its_identity_allows() {
    let h = Harness::start_with("passthrough-allow", three_nodes).await;
    let identity = h
        .create_identity(
            "gpus",
            &h.root_config(),
            json!({
                "allowedNamespaces": { "list": [h.namespace] },
                "allowed": { "pciMappings": ["gpu"], "usbMappings": [] },
            }),
        )
        .await;
    h.create_cluster("pve", &identity, json!({})).await;
    let requests = h.requests();
    let with_cluster = |devices: Value| {
        let mut spec = spec_with(devices);
        spec["clusterRef"] = json!({ "name": "pve" });
        spec
    };
    h.apply(
        "other-gpu",
        with_cluster(json!({ "pciDevices": [{ "mapping": "gpu_away" }] })),
    )
    .await;
    h.apply(
        "a-key",
        with_cluster(json!({ "usbDevices": [{ "mapping": "key" }] })),
    )
    .await;
    let before = vmids(&h).await;
    for (name, expected) in [
        (
            "other-gpu",
            "spec.pciDevices[0].mapping \"gpu_away\" is not allowed by ProxmoxIdentity",
        ),
        (
            "a-key",
            "spec.usbDevices[0].mapping \"key\" is not allowed by ProxmoxIdentity",
        ),
    ] {
        let message = request_refused(&requests, name, "NotAllowed").await;
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            message.contains(&identity),
            "{name} names the rule's owner: {message}"
        );
    }
    assert_eq!(vmids(&h).await, before, "nothing was created");
    h.apply(
        "allowed",
        with_cluster(json!({ "pciDevices": [{ "mapping": "gpu" }] })),
    )
    .await;
    let ready = h.wait_ready("allowed").await;
    let node = ready.status.and_then(|s| s.node).expect("node");
    assert!(node == "pve2" || node == "pve3", "{node}");
    // A ProxmoxCluster cannot widen the identity's mappings.
    h.create_cluster(
        "wider",
        &identity,
        json!({ "pciMappings": ["gpu", "gpu_away"] }),
    )
    .await;
    let message = cluster_condition(
        &h.client,
        &h.namespace,
        "wider",
        "IdentityAllowed",
        "WidensIdentity",
    )
    .await;
    assert!(
        message.contains("spec.allowed.pciMappings[1] \"gpu_away\""),
        "{message}"
    );
    h.stop().await;
}
