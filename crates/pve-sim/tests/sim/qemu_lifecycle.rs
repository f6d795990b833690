//! A VM's life: create (with the rewrites PVE makes to NICs and disks), start, stop, reboot,
//! delete, clone from a template, the guest agent's addresses, and the task failures on the way
//! (a full storage, node memory, a missing bridge or ISO, deleting a running VM).

use reqwest::Method;
use serde_json::json;

use crate::support::{
    advance_clock, create_vm_ok, entry_where, fast_config, start_root, start_root_with, urlencode,
};

#[tokio::test]
async fn plain_client_flow_login_create_wait_start_stop_delete() {
    let (_sim, api) = start_root().await;
    let id = api.get("/cluster/nextid").await;
    assert_eq!(id, json!("100"), "nextid is a string");
    create_vm_ok(&api, "100", &[]).await;
    api.vm_action_ok("100", "start").await;
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "running");
    assert_eq!(status["qmpstatus"], "running");
    assert_eq!(status["maxmem"], json!(2048u64 << 20));
    api.vm_action_ok("100", "stop").await;
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "stopped");
    api.run_ok(
        Method::DELETE,
        "/nodes/pve/qemu/100",
        &[("purge", "1"), ("destroy-unreferenced-disks", "1")],
    )
    .await;
    let missing = "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist\n";
    api.expect_message(
        Method::GET,
        "/nodes/pve/qemu/100/config",
        &[],
        (500, missing),
    )
    .await;
    let content = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=100")
        .await;
    assert_eq!(content, json!([]), "the VM's disk was freed");
}

#[tokio::test]
async fn create_rewrites_nics_and_disks_like_pve() {
    let (_sim, api) = start_root().await;
    let iso = "local:iso/debian-12.7.0-amd64-netinst.iso,media=cdrom";
    create_vm_ok(&api, "101", &[("ide2", iso), ("tags", "B;a")]).await;
    let conf = api.get("/nodes/pve/qemu/101/config").await;
    let net = conf["net0"].as_str().unwrap_or_default();
    assert!(net.starts_with("virtio=BC:24:11:"), "{net}");
    assert!(net.ends_with(",bridge=vmbr0,tag=10"), "{net}");
    assert_eq!(conf["scsi0"], "local-lvm:vm-101-disk-0,iothread=1,size=32G");
    assert_eq!(conf["memory"], json!("2048"), "memory is a string");
    assert_eq!(conf["cores"], json!(2), "cores is a number");
    // 9.1.17+ normalises tags at create as config updates do (lower-cased, sorted); 8.4 stored
    // them verbatim (the version tests show both).
    assert_eq!(conf["tags"], "a;b", "create normalises tags");
    assert_eq!(conf["boot"], "order=scsi0;ide2;net0");
    assert!(
        conf["smbios1"]
            .as_str()
            .unwrap_or_default()
            .starts_with("uuid=")
    );
    assert_eq!(conf["digest"].as_str().map(str::len), Some(40));
    assert!(conf.get("vmid").is_none());
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/101/status/start", &[])
        .await;
    let log_path = format!("/nodes/pve/tasks/{}/log", urlencode(&upid));
    api.wait_task(&upid).await;
    let log = api.expect(Method::GET, &log_path, &[], 200).await;
    let last = log["data"]
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["t"], "TASK OK");
    assert_eq!(
        log["total"],
        json!(log["data"].as_array().map(Vec::len).unwrap_or(0))
    );
}

#[tokio::test]
async fn allocation_fails_the_task_when_the_storage_is_full() {
    let (_sim, api) = start_root().await;
    let exit = api.run_create("103", &[("scsi0", "local-lvm:3000")]).await;
    assert!(exit.starts_with("unable to create VM 103 - "), "{exit}");
    assert!(exit.contains("does not have enough free space"), "{exit}");
    // The failed VM is gone.
    api.expect(Method::GET, "/nodes/pve/qemu/103/config", &[], 500)
        .await;
}

#[tokio::test]
async fn starting_beyond_node_memory_fails_the_task() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "104", &[("memory", "40000")]).await;
    create_vm_ok(&api, "105", &[("memory", "40000")]).await;
    api.vm_action_ok("104", "start").await;
    let exit = api.vm_action("105", "start").await;
    assert_eq!(exit, "start failed: QEMU exited with code 1");
    let again = api.vm_action("104", "start").await;
    assert_eq!(again, "VM 104 already running");
    let missing_bridge = [("memory", "512"), ("net0", "virtio,bridge=vmbr9")];
    api.expect(
        Method::PUT,
        "/nodes/pve/qemu/105/config",
        &missing_bridge,
        200,
    )
    .await;
    let exit = api.vm_action("105", "start").await;
    assert_eq!(exit, "bridge 'vmbr9' does not exist");
    // A missing ISO is accepted in the config.
    let missing_iso = [
        ("net0", "virtio,bridge=vmbr0"),
        ("ide2", "local:iso/missing.iso,media=cdrom"),
    ];
    api.expect(Method::PUT, "/nodes/pve/qemu/105/config", &missing_iso, 200)
        .await;
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    let status = api.wait_task(&upid).await;
    assert_eq!(
        status["exitstatus"],
        "start failed: QEMU exited with code 1"
    );
    let (_, log) = api
        .call(
            Method::GET,
            &format!("/nodes/pve/tasks/{}/log", urlencode(&upid)),
            &[],
        )
        .await;
    assert!(
        log.to_string()
            .contains("Could not open 'local:iso/missing.iso'"),
        "{log}"
    );
}

#[tokio::test]
async fn deleting_a_running_vm_fails() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "106", &[("start", "1")]).await;
    let running = (500, "VM 106 is running - destroy failed\n");
    api.expect_message(Method::DELETE, "/nodes/pve/qemu/106", &[], running)
        .await;
    api.expect(Method::POST, "/nodes/pve/qemu/106/status/reboot", &[], 200)
        .await;
}

#[tokio::test]
async fn clone_makes_linked_and_full_copies_of_a_template() {
    let (_sim, api) = start_root().await;
    let clone = "/nodes/pve/qemu/9000/clone";
    let linked = [("newid", "120"), ("name", "linked")];
    let upid = api.upid(Method::POST, clone, &linked).await;
    assert!(
        upid.contains(":qmclone:9000:"),
        "the task id is the source VMID: {upid}"
    );
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    let linked = api.get("/nodes/pve/qemu/120/config").await;
    assert_eq!(
        linked["scsi0"],
        "local-lvm:base-9000-disk-0/vm-120-disk-0,iothread=1,size=8G"
    );
    assert_eq!(linked["name"], "linked");
    assert!(linked.get("template").is_none());
    let template = api.get("/nodes/pve/qemu/9000/config").await;
    assert_ne!(linked["net0"], template["net0"], "a clone gets a new MAC");
    api.run_ok(
        Method::POST,
        "/nodes/pve/qemu/9000/clone",
        &[("newid", "121"), ("full", "1"), ("storage", "local-lvm")],
    )
    .await;
    let full = api.get("/nodes/pve/qemu/121/config").await;
    assert_eq!(full["scsi0"], "local-lvm:vm-121-disk-0,iothread=1,size=8G");
    let exists = (500, "unable to create VM 121: config file already exists\n");
    let again = [("newid", "121")];
    api.expect_message(Method::POST, "/nodes/pve/qemu/9000/clone", &again, exists)
        .await;
    let exit = api.vm_action("9000", "start").await;
    assert_eq!(exit, "you can't start a vm if it's a template");
}

#[tokio::test]
async fn guest_agent_reports_addresses_of_running_vms_with_the_agent_enabled() {
    // The guest boots for a minute of simulated time, so that "still booting" does not depend
    // on how fast this machine gets from the start to the next request.
    let mut config = fast_config();
    config.agent_boot_delay_ms = 60_000;
    let (sim, api) = start_root_with(config).await;
    let agent = [("agent", "1"), ("ipconfig0", "ip=10.1.2.3/24,gw=10.1.2.1")];
    create_vm_ok(&api, "109", &agent).await;
    // qemu-server's assert_agent_available, in order: an agent key, a running VM, an agent
    // that answers.
    create_vm_ok(&api, "108", &[]).await;
    let interfaces = |vmid: &str| format!("/nodes/pve/qemu/{vmid}/agent/network-get-interfaces");
    let no_agent = (500, "No QEMU guest agent configured\n");
    api.expect_message(Method::GET, &interfaces("108"), &[], no_agent)
        .await;
    let path = &interfaces("109");
    api.expect_message(Method::GET, path, &[], (500, "VM 109 is not running\n"))
        .await;
    api.vm_action_ok("109", "start").await;
    // The guest is still booting.
    let booting = (500, "QEMU guest agent is not running\n");
    api.expect_message(Method::GET, path, &[], booting).await;
    advance_clock(&sim, 61).await;
    let data = api.get(path).await;
    let eth0 = entry_where(&data["result"], "name", "eth0");
    assert_eq!(eth0["ip-addresses"][0]["ip-address"], "10.1.2.3");
    assert_eq!(
        api.get("/nodes/pve/qemu/109/status/current").await["agent"],
        json!(1)
    );
}
