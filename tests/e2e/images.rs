//! ProxmoxImages: images Proxmox downloads from a URL (served on loopback by the test), the
//! requests that boot or import them, and what happens when a download fails, the controller
//! crashes mid-download, or the last user goes.

mod admission;

use std::collections::BTreeSet;

use kube::Api;
use kube::api::{DeleteParams, ListParams};
use pve_client::api::tasks::{TaskListQuery, TaskSource};
use pve_operator::cli::image_server::ImageServer;
use pve_operator_api::{ImageState, ProxmoxImage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{
    Harness, apply_forced, small_spec, vmid_of, wait_for, wait_gone, wait_reason, wait_status,
};

/// A three-node simulator whose `local` storage (node-local) takes ISO and disk images, and
/// with a shared `nfs` storage on every node.
async fn three_nodes(prefix: &str) -> Harness {
    Harness::start_with(prefix, |options| {
        for name in ["pve2", "pve3"] {
            options.config.nodes.push(pve_sim::config::NodeConfig {
                name: name.into(),
                cpus: 16,
                memory: pve_sim::config::Size(64 << 30),
                bridges: vec!["vmbr0".into()],
                online: true,
            });
        }
        for storage in &mut options.config.storages {
            if storage.id == "local" {
                storage.content.push("import".into());
            }
        }
        options
            .config
            .storages
            .push(pve_sim::config::StorageConfig {
                id: "nfs".into(),
                r#type: "nfs".into(),
                content: vec!["iso".into(), "import".into()],
                capacity: pve_sim::config::Size(100 << 30),
                shared: true,
                nodes: None,
            });
    })
    .await
}

/// Content that stands for an image file: `size` bytes of a pattern named by `seed`.
fn image_bytes(seed: &str, size: usize) -> Vec<u8> {
    seed.bytes().cycle().take(size).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn images(h: &Harness) -> Api<ProxmoxImage> {
    Api::namespaced(h.client.clone(), &h.namespace)
}

/// Applies ProxmoxImage `name` with `spec` (the default connection: no clusterRef).
async fn apply_image(h: &Harness, name: &str, spec: Value) {
    let doc = json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "ProxmoxImage",
        "metadata": { "name": name },
        "spec": spec,
    });
    apply_forced(&images(h), "e2e-tests", name, &doc).await;
}

/// The `download` tasks Proxmox ran or runs on `node` for `file`.
async fn downloads_of(h: &Harness, node: &str, file: &str) -> usize {
    let query = TaskListQuery {
        typefilter: Some("download".into()),
        source: Some(TaskSource::All),
        ..TaskListQuery::default()
    };
    h.pve
        .tasks(node, &query)
        .await
        .expect("task list")
        .iter()
        .filter(|t| t.id == file)
        .count()
}

/// The nodes whose status says the image is present.
fn present_on(image: &ProxmoxImage) -> BTreeSet<String> {
    image
        .status
        .iter()
        .flat_map(|s| s.nodes.iter())
        .filter(|n| n.state == ImageState::Present)
        .map(|n| n.node.clone())
        .collect()
}

fn iso_request(image: &str) -> Value {
    let mut spec = small_spec();
    spec["boot"] = json!({ "image": { "name": image } });
    spec
}

#[tokio::test]
async fn twenty_requests_boot_one_image_downloaded_once_per_node_and_kept_across_a_crash() {
    let mut h = three_nodes("images-iso").await;
    let content = image_bytes("installer", 256 << 10);
    let server = ImageServer::start(vec![("isos/installer.iso".into(), content.clone())])
        .await
        .expect("image server");
    let checksum = sha256_hex(&content);
    server.hold();
    apply_image(
        &h,
        "installer",
        json!({
            "url": server.url("isos/installer.iso"),
            "checksum": { "algorithm": "sha256", "value": checksum },
            "content": "iso",
            "storage": "local",
        }),
    )
    .await;
    for i in 0..20 {
        h.apply(&format!("boot-{i:02}"), iso_request("installer"))
            .await;
    }
    // Every node downloads (node-local storage); the server holds the bodies back.
    let downloading = wait_for(&images(&h), "installer", "three downloads", |i| {
        i.status.as_ref().is_some_and(|s| {
            s.nodes.len() == 3 && s.nodes.iter().all(|n| n.state == ImageState::Downloading)
        })
    })
    .await;
    let waiting = h.requests().get("boot-00").await.expect("request");
    assert_eq!(
        waiting.status.as_ref().and_then(|s| s.vmid),
        None,
        "no VMID is taken while the image is not there"
    );
    assert_eq!(
        waiting
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.reason.as_str()),
        Some("ImagePending")
    );

    // A crash mid-download: the new controller finds the running downloads again.
    h.crash_controller().await;
    h.start_controller();
    server.release();
    let image = wait_status(&images(&h), "installer", "Ready", "True").await;
    assert_eq!(
        present_on(&image),
        ["pve", "pve2", "pve3"].map(String::from).into(),
        "{downloading:?}"
    );
    let file = format!("pveop-sha256-{checksum}.iso");
    let volid = format!("local:iso/{file}");
    assert_eq!(
        image.status.as_ref().and_then(|s| s.volume.clone()),
        Some(volid.clone())
    );
    for node in ["pve", "pve2", "pve3"] {
        assert_eq!(
            downloads_of(&h, node, &file).await,
            1,
            "one download on {node}"
        );
    }
    assert_eq!(
        server.requests_for("isos/installer.iso"),
        3,
        "one fetch per node"
    );

    for i in 0..20 {
        let name = format!("boot-{i:02}");
        let request = h.wait_ready(&name).await;
        let config = config_on_its_node(&h, &request).await;
        let cdrom = config.get("ide2").unwrap_or_default();
        assert!(cdrom.starts_with(&volid), "{name} boots the image: {cdrom}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_checksum_fails_the_download_names_the_image_and_creates_no_vm() {
    let h = three_nodes("images-bad").await;
    let server = ImageServer::start(vec![("bad.iso".into(), image_bytes("bad", 4096))])
        .await
        .expect("image server");
    apply_image(
        &h,
        "bad",
        json!({
            "url": server.url("bad.iso"),
            "checksum": { "algorithm": "sha256", "value": "0".repeat(64) },
            "content": "iso",
            "storage": "nfs",
        }),
    )
    .await;
    let failed = wait_reason(&images(&h), "bad", "Ready", "DownloadFailed").await;
    let message = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("checksum"), "Proxmox's reason: {message}");
    assert!(
        failed.status.as_ref().is_some_and(|s| s.shared),
        "one download for nfs"
    );
    assert_eq!(
        server.requests_for("bad.iso"),
        1,
        "a shared storage downloads once"
    );

    h.apply("wants-bad", iso_request("bad")).await;
    let request = wait_reason(&h.requests(), "wants-bad", "Ready", "ImageFailed").await;
    let ready = request
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .cloned()
        .expect("Ready");
    assert!(
        ready.message.contains("\"bad\""),
        "names the image: {}",
        ready.message
    );
    assert_eq!(request.status.as_ref().and_then(|s| s.vmid), None);
    let resources = h.pve.cluster_resources(None).await.expect("resources");
    let vms: Vec<_> = resources
        .iter()
        .filter(|r| r.vmid.is_some() && r.template != Some(true))
        .collect();
    assert!(vms.is_empty(), "no VM was created: {vms:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_cloud_image_is_imported_grown_and_removed_after_its_last_user_under_delete() {
    let h = three_nodes("images-cloud").await;
    let content = image_bytes("cloud", 1 << 20);
    let server = ImageServer::start(vec![("cloud/debian-12.qcow2".into(), content.clone())])
        .await
        .expect("image server");
    let checksum = sha256_hex(&content);
    apply_image(
        &h,
        "debian",
        json!({
            "url": server.url("cloud/debian-12.qcow2"),
            "checksum": { "algorithm": "sha256", "value": checksum },
            "content": "import",
            "storage": "local",
            "nodes": ["pve2"],
            "deletionPolicy": "Delete",
        }),
    )
    .await;
    let mut spec = small_spec();
    spec["disks"] = json!([{
        "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4, "image": { "name": "debian" }
    }]);
    spec["cloudInit"] = json!({
        "storage": "local-lvm",
        "user": "debian",
        "ipConfigs": [{ "interface": "net0", "dhcp": true }],
    });
    h.apply("cloud-vm", spec).await;
    let request = h.wait_ready("cloud-vm").await;
    assert_eq!(
        request
            .status
            .as_ref()
            .and_then(|s| s.node.clone())
            .as_deref(),
        Some("pve2"),
        "placed on the only node that has the image"
    );
    let config = config_on_its_node(&h, &request).await;
    let disk = config.get("scsi0").unwrap_or_default();
    assert!(disk.starts_with("local-lvm:"), "{disk}");
    assert!(disk.contains("size=4G"), "grown to sizeGiB: {disk}");
    assert!(!disk.contains("import-from"), "{disk}");
    assert_eq!(config.get("ciuser"), Some("debian"));

    // Delete: the files stay while a request uses the image, and go with its last user.
    let volid = format!("local:import/pveop-sha256-{checksum}.qcow2");
    images(&h)
        .delete("debian", &DeleteParams::default())
        .await
        .expect("delete requested");
    wait_reason(&images(&h), "debian", "Ready", "InUse").await;
    assert!(volume_listed(&h, "pve2", &volid).await, "kept while in use");
    h.delete_and_wait_gone("cloud-vm").await;
    wait_gone(&images(&h), "debian").await;
    assert!(
        !volume_listed(&h, "pve2", &volid).await,
        "removed with the last user"
    );
    let left = h
        .requests()
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(left.items.is_empty());
    h.stop().await;
}

/// The config of the request's VM, read on the node its status names.
async fn config_on_its_node(
    h: &Harness,
    request: &pve_operator_api::MachineRequest,
) -> pve_client::api::vmconfig::VmConfigView {
    let node = request
        .status
        .as_ref()
        .and_then(|s| s.node.clone())
        .expect("status.node");
    h.pve
        .qemu_config(&node, vmid_of(request))
        .await
        .unwrap_or_else(|e| panic!("config of {} on {node}: {e}", vmid_of(request)))
}

/// Whether `volid` is in its storage's content on `node`.
async fn volume_listed(h: &Harness, node: &str, volid: &str) -> bool {
    let storage = volid.split(':').next().unwrap_or_default();
    h.pve
        .storage_content(node, storage, None, None)
        .await
        .expect("content")
        .iter()
        .any(|v| v.volid == volid)
}
