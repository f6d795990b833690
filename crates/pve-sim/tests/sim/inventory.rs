//! Read endpoints: version, node status, network, storage, cluster status and resources (fresh VMs
//! are `unknown` until the RRD has them), and a two-node cluster that keeps VMs and local storage
//! per node.

use pve_sim::config::ClusterConfig;
use reqwest::Method;
use serde_json::json;

use crate::support::{Api, ROOT_PW, create_vm, fast_config, start, start_with};

#[tokio::test]
async fn read_endpoints_answer_like_pve() {
    let sim = start().await;
    let api = Api::root(&sim).await;
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
    let (code, body) = api
        .call(Method::GET, "/nodes/pve/storage", &[("storage", "nope")])
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["storage"], "No such storage.");
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
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "190", &[("tags", "k8s")]).await, "OK");
    let vms = api.get("/cluster/resources?type=vm").await;
    let fresh = vms
        .as_array()
        .and_then(|l| l.iter().find(|v| v["vmid"] == json!(190)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        fresh,
        json!({"id": "qemu/190", "vmid": 190, "node": "pve", "type": "qemu", "status": "unknown", "tags": "k8s"})
    );
    let template = vms
        .as_array()
        .and_then(|l| l.iter().find(|v| v["vmid"] == json!(9000)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        template["status"], "stopped",
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
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve2/qemu",
            &[("vmid", "200"), ("scsi0", "local-lvm:15")],
        )
        .await;
    assert_eq!(exit, "OK");
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve1/qemu",
            &[("vmid", "201"), ("scsi0", "local-lvm:15")],
        )
        .await;
    assert_eq!(exit, "OK", "local storage capacity is per node");
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve1/qemu",
            &[("vmid", "202"), ("scsi0", "local-lvm:10")],
        )
        .await;
    assert!(exit.contains("does not have enough free space"), "{exit}");
    let (code, body) = api
        .call(Method::GET, "/nodes/pve1/qemu/200/config", &[])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist\n"
    );
    let (code, body) = api
        .call(Method::POST, "/nodes/pve1/qemu", &[("vmid", "200")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 200 - VM 200 already exists on node 'pve2'\n"
    );
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
