//! Inventory reads: nodes, node status, storages and their content, bridges, cluster resources
//! and the VM list decode into the typed answers.

use pve_client::api::cluster::ResourceType;

use crate::support::{Harness, ISO, NODE};

#[tokio::test]
async fn node_storage_network_and_inventory_reads_decode() {
    let h = Harness::start().await;
    let root = h.root();
    let nodes = root.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, NODE);
    assert_eq!(
        nodes[0].ssl_fingerprint.as_deref(),
        Some(h.sim.fingerprint())
    );
    let status = root.node_status(NODE).await.expect("node status");
    assert_eq!(
        status.memory.and_then(|m| m.total),
        Some(64 << 30),
        "64 GiB node"
    );
    let images = root
        .storages(NODE, Some("images"), true)
        .await
        .expect("storages with images");
    let names: Vec<&str> = images.iter().map(|s| s.storage.as_str()).collect();
    assert_eq!(names, ["local-lvm"]);
    let isos = root
        .storage_content(NODE, "local", Some("iso"), None)
        .await
        .expect("ISO list");
    assert!(isos.iter().any(|v| v.volid == ISO), "{isos:?}");
    let bridges = root
        .network(
            NODE,
            Some(pve_client::api::nodes::NetworkTypeFilter::AnyBridge),
        )
        .await
        .expect("bridges");
    let mut names: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["vmbr0", "vmbr1"]);
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let template = vms
        .iter()
        .find(|r| r.vmid == Some(9000))
        .expect("template 9000 listed");
    assert_eq!(template.template, Some(true));
    assert_eq!(template.name.as_deref(), Some("debian-12-template"));
    let list = root.qemu_list(NODE).await.expect("qemu list");
    assert!(
        list.iter()
            .any(|v| v.vmid == 9000 && v.template == Some(true))
    );
}

#[tokio::test]
async fn mappings_decode_with_the_nodes_that_have_a_device_and_a_mapped_gpu_is_created() {
    use pve_client::api::mapping::MappingKind;
    use pve_client::api::vmconfig::{PciDevice, UsbDevice, VmConfig};

    let mut cluster = crate::support::fast_cluster();
    cluster.mappings.pci = vec![pve_sim::MappingConfig {
        id: "gpu_a".into(),
        description: Some("A4000".into()),
        map: vec!["node=pve,path=0000:01:00.0,id=10de:24b0".into()],
        mdev: false,
    }];
    let h = Harness::start_with(cluster).await;
    let root = h.root();
    let pci = root.mappings(MappingKind::Pci).await.expect("pci mappings");
    assert_eq!(pci.len(), 1);
    assert_eq!(pci[0].id, "gpu_a");
    assert_eq!(pci[0].nodes(), [NODE]);
    assert!(
        root.mappings(MappingKind::Usb)
            .await
            .expect("usb")
            .is_empty()
    );

    let mut config = VmConfig {
        memory_mib: Some(1024),
        ..VmConfig::default()
    };
    config.pci_devices.insert(
        0,
        PciDevice {
            pcie: Some(true),
            ..PciDevice::mapped("gpu_a")
        },
    );
    config.usb_devices.insert(1, UsbDevice::mapped("key"));
    crate::support::create_and_wait(&root, 150, &config).await;
    let read = root.qemu_config(NODE, 150).await.expect("config");
    assert_eq!(read.get("hostpci0"), Some("mapping=gpu_a,pcie=1"));
    assert_eq!(read.get("usb1"), Some("mapping=key"));
}
