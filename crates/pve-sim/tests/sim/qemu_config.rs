//! Changing a VM's config: digests, synchronous PUT and asynchronous POST, pending changes of a
//! running VM, tag normalisation, disks allocated all or nothing, resize, and cloud-init changes
//! pending until the image is regenerated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, create_vm_ok, entry_where, start_root};

#[tokio::test]
async fn config_digest_pending_changes_and_tag_normalisation() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "107", &[]).await;
    let conf = api.get("/nodes/pve/qemu/107/config").await;
    let digest = conf["digest"].as_str().unwrap_or_default().to_string();
    let path = "/nodes/pve/qemu/107/config";
    let stale = [
        ("cores", "4"),
        ("digest", "0000000000000000000000000000000000000000"),
    ];
    let mismatch = (500, "checksum mismatch (file change by other user?)\n");
    api.expect_message(Method::PUT, path, &stale, mismatch)
        .await;
    let tags = [("tags", "Zeta,alpha;alpha"), ("digest", &digest)];
    let body = api.expect(Method::PUT, path, &tags, 200).await;
    assert_eq!(body["data"], Value::Null, "PUT is synchronous");
    assert_eq!(
        api.get("/nodes/pve/qemu/107/config").await["tags"],
        "alpha;zeta"
    );
    api.vm_action_ok("107", "start").await;
    api.run_ok(Method::POST, path, &[("cores", "8"), ("name", "renamed")])
        .await;
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
    let cores = entry_where(&pending, "key", "cores");
    assert_eq!(cores, json!({"key": "cores", "value": 2, "pending": 8}));
    api.vm_action_ok("107", "stop").await;
    let current = api.get("/nodes/pve/qemu/107/config?current=1").await;
    assert_eq!(current["cores"], json!(8), "pending changes apply at stop");
    let delayed = [("onboot", "1"), ("background_delay", "5")];
    let body = api.expect(Method::POST, path, &delayed, 200).await;
    assert_eq!(
        body["data"],
        Value::Null,
        "a worker that ends within background_delay answers null"
    );
    let set_and_delete = [("cores", "2"), ("delete", "cores")];
    let body = api.expect(Method::PUT, path, &set_and_delete, 400).await;
    assert!(body["errors"]["delete"].is_string());
}

#[tokio::test]
async fn config_update_allocates_disks_all_or_nothing_and_keeps_replaced_ones_unused() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "112", &[]).await;
    let path = "/nodes/pve/qemu/112/config";
    let too_big = [("scsi1", "local-lvm:10"), ("scsi2", "local-lvm:5000")];
    api.expect(Method::PUT, path, &too_big, 500).await;
    let volumes = || api.get("/nodes/pve/storage/local-lvm/content?vmid=112");
    let first_only = volumes().await;
    assert_eq!(
        first_only.as_array().map(Vec::len),
        Some(1),
        "only the first disk: {first_only}"
    );
    api.expect(Method::PUT, path, &[("scsi0", "local-lvm:4")], 200)
        .await;
    let conf = api.get("/nodes/pve/qemu/112/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-112-disk-1,size=4G");
    assert_eq!(conf["unused0"], "local-lvm:vm-112-disk-0");
    api.expect(Method::PUT, path, &[("delete", "unused0")], 200)
        .await;
    assert_eq!(
        volumes().await.as_array().map(Vec::len),
        Some(1),
        "deleting unused0 frees it"
    );
}

#[tokio::test]
async fn resize_grows_disks_asynchronously_and_refuses_to_shrink() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "108", &[]).await;
    let grow = [("disk", "scsi0"), ("size", "+8G")];
    let upid = api
        .upid(Method::PUT, "/nodes/pve/qemu/108/resize", &grow)
        .await;
    assert!(upid.contains(":resize:108:"));
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    let conf = api.get("/nodes/pve/qemu/108/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-108-disk-0,iothread=1,size=40G");
    for (disk, size, failure) in [
        ("scsi0", "10G", "shrinking disks is not supported"),
        ("scsi5", "+1G", "disk 'scsi5' does not exist"),
    ] {
        let resize = [("disk", disk), ("size", size)];
        let exit = api
            .run(Method::PUT, "/nodes/pve/qemu/108/resize", &resize)
            .await;
        assert_eq!(exit, failure, "resize of {disk} to {size}");
    }
}

/// VM 113's generated cloud-init data of type `kind` (`user`, `network`).
async fn cloudinit_dump(api: &Api, kind: &str) -> String {
    let path = format!("/nodes/pve/qemu/113/cloudinit/dump?type={kind}");
    api.get(&path)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn cloud_init_changes_are_pending_until_the_image_is_regenerated() {
    let (_sim, api) = start_root().await;
    create_vm_ok(
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
    assert_eq!(
        api.get("/nodes/pve/qemu/113/config").await["ide2"],
        "local-lvm:vm-113-cloudinit,media=cdrom"
    );
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    assert_eq!(
        entry_where(&ci, "key", "ciuser"),
        json!({"key": "ciuser", "pending": "ubuntu"}),
        "never generated yet"
    );
    api.vm_action_ok("113", "start").await;
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    assert!(
        ci.as_array()
            .is_some_and(|l| l.iter().all(|e| e.get("pending").is_none())),
        "{ci}"
    );
    let admin = [("ciuser", "admin")];
    api.expect(Method::PUT, "/nodes/pve/qemu/113/config", &admin, 200)
        .await;
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    assert_eq!(
        entry_where(&ci, "key", "ciuser"),
        json!({"key": "ciuser", "value": "ubuntu", "pending": "admin"})
    );
    api.expect(Method::PUT, "/nodes/pve/qemu/113/cloudinit", &[], 200)
        .await;
    let user = cloudinit_dump(&api, "user").await;
    assert!(user.starts_with("#cloud-config\n"), "{user}");
    assert!(user.contains("user: admin\n"), "{user}");
    assert!(
        user.contains("  - ssh-ed25519 AAAAC3Nza me@host\n"),
        "{user}"
    );
    let network = cloudinit_dump(&api, "network").await;
    assert!(network.contains("address: '10.9.8.7'"), "{network}");
    assert!(network.contains("netmask: '255.255.255.0'"), "{network}");
    assert!(network.contains("gateway: '10.9.8.1'"), "{network}");
}
