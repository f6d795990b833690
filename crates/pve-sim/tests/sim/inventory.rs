//! Read endpoints: version, node status, network, storage, cluster status and resources (fresh VMs
//! are `unknown` until the RRD has them), and a two-node cluster that keeps VMs and local storage
//! per node.

use pve_sim::config::ClusterConfig;
use reqwest::Method;
use serde_json::json;

use crate::support::{
    Api, ROOT_PW, create_vm_ok, entry_where, fast_config, start_root, start_root_with,
};

#[tokio::test]
async fn read_endpoints_answer_like_pve() {
    let (_sim, api) = start_root().await;
    let v = api.get("/version").await;
    assert_eq!(
        v,
        json!({"version": "9.1.5", "release": "9.1", "repoid": "2b0c6e4f9a1d7c35"})
    );
    let status = api.get("/nodes/pve/status").await;
    assert_eq!(status["memory"]["total"], json!(64u64 << 30));
    let bridges = api.get("/nodes/pve/network?type=bridge").await;
    assert_eq!(bridges.as_array().map(Vec::len), Some(2));
    let storages = api.get("/nodes/pve/storage?content=images").await;
    assert_eq!(storages.as_array().map(Vec::len), Some(1));
    assert_eq!(storages[0]["storage"], "local-lvm");
    api.expect_param_error(
        Method::GET,
        "/nodes/pve/storage",
        &[("storage", "nope")],
        ("storage", "No such storage."),
    )
    .await;
    let status = api.get("/nodes/pve/storage/local-lvm/status").await;
    assert_eq!(status["total"], json!(2u64 << 40));
    assert_eq!(
        status["avail"]
            .as_u64()
            .zip(status["used"].as_u64())
            .map(|(a, u)| a + u),
        Some(2u64 << 40)
    );
    let defs = api.get("/storage").await;
    assert_eq!(defs.as_array().map(Vec::len), Some(2));
    assert_eq!(api.get("/storage/local-lvm").await["thinpool"], "data");
    let isos = api
        .get("/nodes/pve/storage/local/content?content=iso")
        .await;
    assert_eq!(
        isos[0]["volid"],
        "local:iso/debian-12.7.0-amd64-netinst.iso"
    );
    let cluster = api.get("/cluster/status").await;
    assert_eq!(cluster[0]["type"], "node");
}

#[tokio::test]
async fn fresh_vms_show_as_unknown_in_cluster_resources_until_the_rrd_has_them() {
    let mut cfg = fast_config();
    cfg.rrd_delay_ms = 60_000;
    let (_sim, api) = start_root_with(cfg).await;
    create_vm_ok(&api, "190", &[("tags", "k8s")]).await;
    let vms = api.get("/cluster/resources?type=vm").await;
    assert_eq!(
        entry_where(&vms, "vmid", 190),
        json!({"id": "qemu/190", "vmid": 190, "node": "pve", "type": "qemu", "status": "unknown", "tags": "k8s"})
    );
    assert_eq!(
        entry_where(&vms, "vmid", 9000)["status"],
        "stopped",
        "VMs present at start have RRD data"
    );
}

#[tokio::test]
async fn a_two_node_cluster_keeps_vms_and_local_storage_per_node() {
    let mut cfg = ClusterConfig::from_yaml(
        "cluster_name: lab\n\
         nodes:\n  - {name: pve1, cpus: 8, memory: 16G, bridges: [vmbr0]}\n  - {name: pve2, cpus: 8, memory: 16G, bridges: [vmbr0]}\n\
         storages:\n  - {id: local-lvm, type: lvmthin, content: [images], capacity: 20G}\n  - {id: ceph, type: rbd, content: [images], capacity: 100G, shared: true}\n\
         isos: []\ntemplates: []\n",
    )
    .expect("valid config");
    cfg.task_durations_ms.create = 50;
    let (sim, api) = start_root_with(cfg).await;
    let disk_15g = |vmid| [("vmid", vmid), ("scsi0", "local-lvm:15")];
    api.run_ok(Method::POST, "/nodes/pve2/qemu", &disk_15g("200"))
        .await;
    // Local storage capacity is per node.
    api.run_ok(Method::POST, "/nodes/pve1/qemu", &disk_15g("201"))
        .await;
    let too_big = [("vmid", "202"), ("scsi0", "local-lvm:10")];
    let exit = api.run(Method::POST, "/nodes/pve1/qemu", &too_big).await;
    assert!(exit.contains("does not have enough free space"), "{exit}");
    let elsewhere = "Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist\n";
    api.expect_message(
        Method::GET,
        "/nodes/pve1/qemu/200/config",
        &[],
        (500, elsewhere),
    )
    .await;
    let exists = "unable to create VM 200 - VM 200 already exists on node 'pve2'\n";
    let again = [("vmid", "200")];
    api.expect_message(Method::POST, "/nodes/pve1/qemu", &again, (500, exists))
        .await;
    let status = api.get("/cluster/status").await;
    assert_eq!(status[0]["type"], "cluster");
    assert_eq!(status[0]["nodes"], json!(2));
    let storages = api.get("/cluster/resources?type=storage").await;
    assert_eq!(
        storages.as_array().map(Vec::len),
        Some(4),
        "one entry per storage and node"
    );
    let anon = Api::anonymous(&sim);
    let (_, login) = anon
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "root@pam"), ("password", ROOT_PW)],
        )
        .await;
    assert_eq!(login["data"]["clustername"], "lab");
}
