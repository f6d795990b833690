//! A VM's life: create (with the rewrites PVE makes to NICs and disks), start, stop, reboot,
//! delete, clone from a template, the guest agent's addresses, and the task failures on the way
//! (a full storage, node memory, a missing bridge or ISO, deleting a running VM).

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, advance_clock, create_vm, fast_config, start, start_with, urlencode};

#[tokio::test]
async fn plain_client_flow_login_create_wait_start_stop_delete() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let id = api.get("/cluster/nextid").await;
    assert_eq!(id, json!("100"), "nextid is a string");
    assert_eq!(create_vm(&api, "100", &[]).await, "OK");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
            .await,
        "OK"
    );
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "running");
    assert_eq!(status["qmpstatus"], "running");
    assert_eq!(status["maxmem"], json!(2048u64 << 20));
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/100/status/stop", &[])
            .await,
        "OK"
    );
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "stopped");
    let deleted = api
        .run(
            Method::DELETE,
            "/nodes/pve/qemu/100",
            &[("purge", "1"), ("destroy-unreferenced-disks", "1")],
        )
        .await;
    assert_eq!(deleted, "OK");
    let (code, body) = api
        .call(Method::GET, "/nodes/pve/qemu/100/config", &[])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist\n"
    );
    let content = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=100")
        .await;
    assert_eq!(content, json!([]), "the VM's disk was freed");
}

#[tokio::test]
async fn create_rewrites_nics_and_disks_like_pve() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = create_vm(
        &api,
        "101",
        &[
            (
                "ide2",
                "local:iso/debian-12.7.0-amd64-netinst.iso,media=cdrom",
            ),
            ("tags", "B;a"),
        ],
    )
    .await;
    assert_eq!(exit, "OK");
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
    let (code, log) = api.call(Method::GET, &log_path, &[]).await;
    assert_eq!(code, 200);
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
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "103"), ("scsi0", "local-lvm:3000")],
        )
        .await;
    assert!(exit.starts_with("unable to create VM 103 - "), "{exit}");
    assert!(exit.contains("does not have enough free space"), "{exit}");
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/103/config", &[])
        .await;
    assert_eq!(code, 500, "the failed VM is gone");
}

#[tokio::test]
async fn starting_beyond_node_memory_fails_the_task() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "104", &[("memory", "40000")]).await, "OK");
    assert_eq!(create_vm(&api, "105", &[("memory", "40000")]).await, "OK");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/104/status/start", &[])
            .await,
        "OK"
    );
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    assert_eq!(exit, "start failed: QEMU exited with code 1");
    let again = api
        .run(Method::POST, "/nodes/pve/qemu/104/status/start", &[])
        .await;
    assert_eq!(again, "VM 104 already running");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/105/config",
            &[("memory", "512"), ("net0", "virtio,bridge=vmbr9")],
        )
        .await;
    assert_eq!(code, 200);
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    assert_eq!(exit, "bridge 'vmbr9' does not exist");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/105/config",
            &[
                ("net0", "virtio,bridge=vmbr0"),
                ("ide2", "local:iso/missing.iso,media=cdrom"),
            ],
        )
        .await;
    assert_eq!(code, 200, "a missing ISO is accepted in the config");
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
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "106", &[("start", "1")]).await, "OK");
    let (code, body) = api.call(Method::DELETE, "/nodes/pve/qemu/106", &[]).await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM 106 is running - destroy failed\n");
    let (code, body) = api
        .call(Method::POST, "/nodes/pve/qemu/106/status/reboot", &[])
        .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn clone_makes_linked_and_full_copies_of_a_template() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let upid = api
        .upid(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "120"), ("name", "linked")],
        )
        .await;
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
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "121"), ("full", "1"), ("storage", "local-lvm")],
        )
        .await;
    assert_eq!(exit, "OK");
    let full = api.get("/nodes/pve/qemu/121/config").await;
    assert_eq!(full["scsi0"], "local-lvm:vm-121-disk-0,iothread=1,size=8G");
    let (code, body) = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "121")],
        )
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 121: config file already exists\n"
    );
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/9000/status/start", &[])
        .await;
    assert_eq!(exit, "you can't start a vm if it's a template");
}

#[tokio::test]
async fn guest_agent_reports_addresses_of_running_vms_with_the_agent_enabled() {
    // The guest boots for a minute of simulated time, so that "still booting" does not depend
    // on how fast this machine gets from the start to the next request.
    let mut config = fast_config();
    config.agent_boot_delay_ms = 60_000;
    let sim = start_with(config, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(
        create_vm(
            &api,
            "109",
            &[("agent", "1"), ("ipconfig0", "ip=10.1.2.3/24,gw=10.1.2.1")]
        )
        .await,
        "OK"
    );
    // qemu-server's assert_agent_available, in order: an agent key, a running VM, an agent
    // that answers.
    assert_eq!(create_vm(&api, "108", &[]).await, "OK");
    let (code, body) = api
        .call(
            Method::GET,
            "/nodes/pve/qemu/108/agent/network-get-interfaces",
            &[],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!("No QEMU guest agent configured\n"))
    );
    let path = "/nodes/pve/qemu/109/agent/network-get-interfaces";
    let (code, body) = api.call(Method::GET, path, &[]).await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM 109 is not running\n");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/109/status/start", &[])
            .await,
        "OK"
    );
    let (code, body) = api.call(Method::GET, path, &[]).await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!("QEMU guest agent is not running\n")),
        "the guest is still booting"
    );
    advance_clock(&sim, 61).await;
    let data = api.get(path).await;
    let eth0 = data["result"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == "eth0"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(eth0["ip-addresses"][0]["ip-address"], "10.1.2.3");
    assert_eq!(
        api.get("/nodes/pve/qemu/109/status/current").await["agent"],
        json!(1)
    );
}
