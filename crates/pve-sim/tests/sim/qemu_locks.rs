//! Config locks and concurrency: the `create` lock while a VM is created, changes waiting for a
//! task that holds the config flock, stale locks refusing changes, racing creators of one VMID,
//! and tasks on one VM queueing behind its lock in order.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, create_vm, fast_config, start, start_with, urlencode};

#[tokio::test]
async fn config_shows_the_create_lock_while_creating_and_other_changes_are_refused() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.create = 60_000;
    cfg.flock_timeout_ms = 300;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    let upid = api
        .upid(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "102"), ("scsi0", "local-lvm:8")],
        )
        .await;
    assert!(upid.contains(":qmcreate:102:root@pam:"));
    let conf = api.get("/nodes/pve/qemu/102/config").await;
    assert_eq!(conf["lock"], "create");
    assert_eq!(
        conf.as_object().map(|o| o.len()),
        Some(2),
        "only digest and lock: {conf}"
    );
    let asked = Instant::now();
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/102/config", &[("cores", "4")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"], "can't lock file '/var/lock/qemu-server/lock-102.conf' - got timeout\n",
        "the create worker holds the config lock"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "it waited for the lock first"
    );
    let (code, body) = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "102")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 102 - VM 102 already exists on node 'pve'\n"
    );
    let (code, body) = api
        .call(Method::GET, "/cluster/nextid", &[("vmid", "102")])
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["vmid"], "VM 102 already exists");
    assert_eq!(
        api.get("/cluster/nextid").await,
        json!("100"),
        "nextid does not reserve"
    );
    let (code, _) = api
        .call(
            Method::DELETE,
            &format!("/nodes/pve/tasks/{}", urlencode(&upid)),
            &[],
        )
        .await;
    assert_eq!(code, 200);
    let status = api.wait_task(&upid).await;
    assert_eq!(status["exitstatus"], "interrupted by signal");
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/102/config", &[])
        .await;
    assert_eq!(code, 500, "a stopped create leaves no VM behind");
}

#[tokio::test]
async fn config_changes_wait_for_a_task_holding_the_config_lock_and_stale_locks_refuse() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.stop = 400;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "111", &[("start", "1")]).await, "OK");
    let stop = api
        .upid(Method::POST, "/nodes/pve/qemu/111/status/stop", &[])
        .await;
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/111/config", &[("cores", "3")])
        .await;
    assert_eq!(code, 200, "the change waited for the stop task: {body}");
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
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/111/config", &[("cores", "4")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM is locked (backup)\n");
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/111/status/start", &[])
        .await;
    assert_eq!(exit, "VM is locked (backup)");
}

#[tokio::test]
async fn concurrent_creators_racing_for_one_vmid_get_exactly_one_winner() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let id = api.get("/cluster/nextid").await;
    let id = id.as_str().unwrap_or_default().to_string();
    let attempts = (0..8).map(|_| {
        let api = api.clone();
        let id = id.clone();
        async move {
            api.call(Method::POST, "/nodes/pve/qemu", &[("vmid", id.as_str())])
                .await
        }
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
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "116", &[]).await, "OK");
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
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/116/config", &[])
        .await;
    assert_eq!(code, 500, "then the VM was destroyed");
}
