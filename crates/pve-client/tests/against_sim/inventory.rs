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
