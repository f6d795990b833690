//! Changing a VM's config: digests, synchronous PUT and asynchronous POST, pending changes of a
//! running VM, tag normalisation, disks allocated all or nothing, resize, and cloud-init changes
//! pending until the image is regenerated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, create_vm, start};

#[tokio::test]
async fn config_digest_pending_changes_and_tag_normalisation() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "107", &[]).await, "OK");
    let conf = api.get("/nodes/pve/qemu/107/config").await;
    let digest = conf["digest"].as_str().unwrap_or_default().to_string();
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[
                ("cores", "4"),
                ("digest", "0000000000000000000000000000000000000000"),
            ],
        )
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "checksum mismatch (file change by other user?)\n"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[("tags", "Zeta,alpha;alpha"), ("digest", &digest)],
        )
        .await;
    assert_eq!(
        (code, body["data"].clone()),
        (200, Value::Null),
        "PUT is synchronous"
    );
    assert_eq!(
        api.get("/nodes/pve/qemu/107/config").await["tags"],
        "alpha;zeta"
    );
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/107/status/start", &[])
            .await,
        "OK"
    );
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu/107/config",
            &[("cores", "8"), ("name", "renamed")],
        )
        .await;
    assert_eq!(exit, "OK");
    let conf = api.get("/nodes/pve/qemu/107/config").await;
    assert_eq!(conf["cores"], json!(8), "GET config shows pending values");
    let current = api.get("/nodes/pve/qemu/107/config?current=1").await;
    assert_eq!(
        current["cores"],
        json!(2),
        "current=1 shows the running values"
    );
    assert_eq!(current["name"], "renamed", "the name is applied at once");
    let pending = api.get("/nodes/pve/qemu/107/pending").await;
    let cores = pending
        .as_array()
        .and_then(|p| p.iter().find(|e| e["key"] == "cores"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(cores, json!({"key": "cores", "value": 2, "pending": 8}));
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/107/status/stop", &[])
            .await,
        "OK"
    );
    let current = api.get("/nodes/pve/qemu/107/config?current=1").await;
    assert_eq!(current["cores"], json!(8), "pending changes apply at stop");
    let (code, body) = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/107/config",
            &[("onboot", "1"), ("background_delay", "5")],
        )
        .await;
    assert_eq!(
        (code, body["data"].clone()),
        (200, Value::Null),
        "a worker that ends within background_delay answers null"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[("cores", "2"), ("delete", "cores")],
        )
        .await;
    assert_eq!(code, 400);
    assert!(body["errors"]["delete"].is_string());
}

#[tokio::test]
async fn config_update_allocates_disks_all_or_nothing_and_keeps_replaced_ones_unused() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "112", &[]).await, "OK");
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("scsi1", "local-lvm:10"), ("scsi2", "local-lvm:5000")],
        )
        .await;
    assert_eq!(code, 500, "{body}");
    let volumes = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=112")
        .await;
    assert_eq!(
        volumes.as_array().map(Vec::len),
        Some(1),
        "only the first disk: {volumes}"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("scsi0", "local-lvm:4")],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let conf = api.get("/nodes/pve/qemu/112/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-112-disk-1,size=4G");
    assert_eq!(conf["unused0"], "local-lvm:vm-112-disk-0");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("delete", "unused0")],
        )
        .await;
    assert_eq!(code, 200);
    let volumes = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=112")
        .await;
    assert_eq!(
        volumes.as_array().map(Vec::len),
        Some(1),
        "deleting unused0 frees it"
    );
}

#[tokio::test]
async fn resize_grows_disks_asynchronously_and_refuses_to_shrink() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "108", &[]).await, "OK");
    let upid = api
        .upid(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi0"), ("size", "+8G")],
        )
        .await;
    assert!(upid.contains(":resize:108:"));
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    let conf = api.get("/nodes/pve/qemu/108/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-108-disk-0,iothread=1,size=40G");
    let exit = api
        .run(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi0"), ("size", "10G")],
        )
        .await;
    assert_eq!(exit, "shrinking disks is not supported");
    let exit = api
        .run(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi5"), ("size", "+1G")],
        )
        .await;
    assert_eq!(exit, "disk 'scsi5' does not exist");
}

#[tokio::test]
async fn cloud_init_changes_are_pending_until_the_image_is_regenerated() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = create_vm(
        &api,
        "113",
        &[
            ("ide2", "local-lvm:cloudinit"),
            ("ciuser", "ubuntu"),
            ("ipconfig0", "ip=10.9.8.7/24,gw=10.9.8.1"),
            ("sshkeys", "ssh-ed25519%20AAAAC3Nza%20me%40host"),
        ],
    )
    .await;
    assert_eq!(exit, "OK");
    assert_eq!(
        api.get("/nodes/pve/qemu/113/config").await["ide2"],
        "local-lvm:vm-113-cloudinit,media=cdrom"
    );
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    let ciuser = ci
        .as_array()
        .and_then(|l| l.iter().find(|e| e["key"] == "ciuser"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ciuser,
        json!({"key": "ciuser", "pending": "ubuntu"}),
        "never generated yet"
    );
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/113/status/start", &[])
            .await,
        "OK"
    );
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    assert!(
        ci.as_array()
            .is_some_and(|l| l.iter().all(|e| e.get("pending").is_none())),
        "{ci}"
    );
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/113/config",
            &[("ciuser", "admin")],
        )
        .await;
    assert_eq!(code, 200);
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    let ciuser = ci
        .as_array()
        .and_then(|l| l.iter().find(|e| e["key"] == "ciuser"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ciuser,
        json!({"key": "ciuser", "value": "ubuntu", "pending": "admin"})
    );
    let (code, _) = api
        .call(Method::PUT, "/nodes/pve/qemu/113/cloudinit", &[])
        .await;
    assert_eq!(code, 200);
    let user = api
        .get("/nodes/pve/qemu/113/cloudinit/dump?type=user")
        .await;
    let user = user.as_str().unwrap_or_default();
    assert!(user.starts_with("#cloud-config\n"), "{user}");
    assert!(user.contains("user: admin\n"), "{user}");
    assert!(
        user.contains("  - ssh-ed25519 AAAAC3Nza me@host\n"),
        "{user}"
    );
    let network = api
        .get("/nodes/pve/qemu/113/cloudinit/dump?type=network")
        .await;
    let network = network.as_str().unwrap_or_default();
    assert!(network.contains("address: '10.9.8.7'"), "{network}");
    assert!(network.contains("netmask: '255.255.255.0'"), "{network}");
    assert!(network.contains("gateway: '10.9.8.1'"), "{network}");
}
