//! Config locks and concurrency: the `create` lock while a VM is created, changes waiting for a
//! task that holds the config flock, stale locks refusing changes, racing creators of one VMID,
//! and tasks on one VM queueing behind its lock in order.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::{create_vm_ok, fast_config, start_root, start_root_with, urlencode};

#[tokio::test]
async fn config_shows_the_create_lock_while_creating_and_other_changes_are_refused() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.create = 60_000;
    cfg.flock_timeout_ms = 300;
    let (_sim, api) = start_root_with(cfg).await;
    let upid = api.start_create("102", &[("scsi0", "local-lvm:8")]).await;
    assert!(upid.contains(":qmcreate:102:root@pam:"));
    let conf = api.get("/nodes/pve/qemu/102/config").await;
    assert_eq!(conf["lock"], "create");
    assert_eq!(
        conf.as_object().map(|o| o.len()),
        Some(2),
        "only digest and lock: {conf}"
    );
    let asked = Instant::now();
    // The create worker holds the config lock.
    let cores = [("cores", "4")];
    api.expect_lock_timeout(Method::PUT, "/nodes/pve/qemu/102/config", &cores, "102")
        .await;
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "it waited for the lock first"
    );
    let exists = "unable to create VM 102 - VM 102 already exists on node 'pve'\n";
    let vmid = [("vmid", "102")];
    api.expect_message(Method::POST, "/nodes/pve/qemu", &vmid, (500, exists))
        .await;
    let taken = ("vmid", "VM 102 already exists");
    api.expect_param_error(Method::GET, "/cluster/nextid", &vmid, taken)
        .await;
    assert_eq!(
        api.get("/cluster/nextid").await,
        json!("100"),
        "nextid does not reserve"
    );
    let task = format!("/nodes/pve/tasks/{}", urlencode(&upid));
    api.expect(Method::DELETE, &task, &[], 200).await;
    let status = api.wait_task(&upid).await;
    assert_eq!(status["exitstatus"], "interrupted by signal");
    // A stopped create leaves no VM behind.
    api.expect(Method::GET, "/nodes/pve/qemu/102/config", &[], 500)
        .await;
}

#[tokio::test]
async fn config_changes_wait_for_a_task_holding_the_config_lock_and_stale_locks_refuse() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.stop = 400;
    let (sim, api) = start_root_with(cfg).await;
    create_vm_ok(&api, "111", &[("start", "1")]).await;
    let stop = api
        .upid(Method::POST, "/nodes/pve/qemu/111/status/stop", &[])
        .await;
    // The change waits for the stop task.
    let path = "/nodes/pve/qemu/111/config";
    api.expect(Method::PUT, path, &[("cores", "3")], 200).await;
    let status = api
        .get(&format!("/nodes/pve/tasks/{}/status", urlencode(&stop)))
        .await;
    assert_eq!(
        status["status"], "stopped",
        "the stop finished before the change ran"
    );
    let current = api.get("/nodes/pve/qemu/111/config?current=1").await;
    assert_eq!(
        current["cores"],
        json!(3),
        "applied directly: the VM was stopped by then"
    );
    sim.with_state(|s| {
        if let Some(vm) = s.vms.get_mut(&111) {
            vm.lock = Some("backup".into());
        }
    });
    let locked = (500, "VM is locked (backup)\n");
    api.expect_message(Method::PUT, path, &[("cores", "4")], locked)
        .await;
    let exit = api.vm_action("111", "start").await;
    assert_eq!(exit, "VM is locked (backup)");
}

#[tokio::test]
async fn concurrent_creators_racing_for_one_vmid_get_exactly_one_winner() {
    let (_sim, api) = start_root().await;
    let id = api.get("/cluster/nextid").await;
    let id = id.as_str().unwrap_or_default().to_string();
    let attempts = (0..8).map(|_| {
        let api = api.clone();
        let id = id.clone();
        async move { api.try_create(&id, &[]).await }
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|(code, _)| *code == 200).count();
    assert_eq!(winners, 1, "{results:?}");
    let expected = format!("unable to create VM {id} - VM {id} already exists on node 'pve'\n");
    for (code, body) in results.iter().filter(|(code, _)| *code != 200) {
        assert_eq!(*code, 500);
        assert_eq!(body["message"], json!(expected));
    }
}

#[tokio::test]
async fn tasks_on_one_vm_queue_behind_its_config_lock_in_order() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "116", &[]).await;
    let start = api
        .upid(Method::POST, "/nodes/pve/qemu/116/status/start", &[])
        .await;
    let stop = api
        .upid(Method::POST, "/nodes/pve/qemu/116/status/stop", &[])
        .await;
    let destroy = api
        .upid(Method::DELETE, "/nodes/pve/qemu/116", &[("purge", "1")])
        .await;
    assert_eq!(api.wait_task(&destroy).await["exitstatus"], "OK");
    assert_eq!(
        api.wait_task(&start).await["exitstatus"],
        "OK",
        "start ran first"
    );
    assert_eq!(api.wait_task(&stop).await["exitstatus"], "OK", "then stop");
    // Then the VM was destroyed.
    api.expect(Method::GET, "/nodes/pve/qemu/116/config", &[], 500)
        .await;
}
