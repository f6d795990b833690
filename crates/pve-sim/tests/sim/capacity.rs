//! The capacity model (`capacity:` in the cluster YAML): API worker pools and their queue, the
//! 596 of pveproxy's timeout, the clone holding its target's config flock, storage allocation
//! locks, shared copy bandwidth, and the model being off by default. Assertions are on the
//! simulator's counters and on the task ends it computed, never on how long the test took.

use pve_sim::capacity::{CallCosts, CapacityModel, PoolCounters};
use pve_sim::config::{ClusterConfig, NodeConfig, Size, TemplateConfig};
use reqwest::Method;
use serde_json::Value;

use crate::support::{
    Api, advance_clock, fast_config, raw_get, sim_get, start_root_with, start_with,
};

/// A model whose calls cost nothing and whose tasks take only what a test sets.
fn quiet_model() -> CapacityModel {
    CapacityModel {
        call_cost_ms: CallCosts {
            light_read: 0,
            config_read: 0,
            task_status: 0,
            status_current: 0,
            list_vms_base: 0,
            list_vms_per_vm: 0,
            config_write: 0,
            create: 0,
            clone: 0,
            power: 0,
            login: 0,
            other: 0,
        },
        create_task_ms: 0,
        ..CapacityModel::pve_default()
    }
}

fn with_model(model: CapacityModel) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.capacity = Some(model);
    cfg
}

fn daemon(sim: &pve_sim::RunningSim) -> PoolCounters {
    let stats = sim.capacity_stats().expect("the model is on");
    stats.pools["pve"]["daemon"].clone()
}

fn task_end(sim: &pve_sim::RunningSim, upid: &str) -> u64 {
    sim.with_state(|s| s.task(upid).map(|t| t.end_ms))
        .expect("the task exists")
}

#[tokio::test]
async fn a_fourth_slow_call_waits_for_one_of_the_three_daemon_workers() {
    let mut model = quiet_model();
    model.call_cost_ms.status_current = 1_500;
    let (sim, api) = start_root_with(with_model(model)).await;
    let before = daemon(&sim);
    let path = "/nodes/pve/qemu/9000/status/current";
    let calls = (0..4).map(|_| {
        let api = api.clone();
        async move { api.call(Method::GET, path, &[]).await.0 }
    });
    let codes = futures::future::join_all(calls).await;
    assert_eq!(codes, vec![200; 4]);
    let after = daemon(&sim);
    assert_eq!(after.workers, 3);
    assert_eq!(after.requests - before.requests, 4);
    assert_eq!(after.queued - before.queued, 1, "one waited: {after:?}");
    assert_eq!(after.max_queue_depth, 1);
    assert!(after.busy_ms - before.busy_ms >= 4 * 1_500, "{after:?}");
    assert!(after.queue_wait_ms > 0);
    // A config read is not protected: it runs in pveproxy, not in pvedaemon.
    api.get("/nodes/pve/qemu/9000/config").await;
    let stats = sim.capacity_stats().expect("on");
    assert_eq!(stats.pools["pve"]["proxy"].requests, 1);
    assert_eq!(daemon(&sim).requests, after.requests);
}

#[tokio::test]
async fn a_request_not_answered_within_the_proxy_timeout_gets_596() {
    let mut model = quiet_model();
    model.daemon_workers = 1;
    model.proxy_timeout_ms = 3_000;
    model.call_cost_ms.status_current = 2_000;
    let (sim, api) = start_root_with(with_model(model)).await;
    let path = "/nodes/pve/qemu/9000/status/current";
    let calls = (0..3).map(|_| {
        let api = api.clone();
        async move { api.call(Method::GET, path, &[]).await }
    });
    let mut answers = futures::future::join_all(calls).await;
    answers.sort_by_key(|(code, _)| *code);
    let codes: Vec<u16> = answers.iter().map(|(code, _)| *code).collect();
    // The first is answered after 2 s (1 s within the 3 s timeout); the second waited for it
    // and would answer after 4 s; the third waits in the queue past the timeout.
    assert_eq!(codes, vec![200, 596, 596]);
    assert_eq!(answers[1].1, Value::Null, "596 has an empty body");
    assert_eq!(daemon(&sim).timeouts, 2);
    let statuses = sim.stats().responses_by_status;
    assert_eq!(statuses.get(&596), Some(&2));
    // The login and the first call: the second's 200 became a 596.
    assert_eq!(statuses.get(&200), Some(&2));
}

#[tokio::test]
async fn a_handler_slower_than_the_proxy_timeout_answers_596_and_keeps_its_effect() {
    let mut model = quiet_model();
    model.proxy_timeout_ms = 300;
    model.call_cost_ms.status_current = 1_000;
    model.call_cost_ms.config_write = 1_000;
    let sim = start_with(with_model(model), true).await;
    let api = Api::root(&sim).await;
    let cookie = format!("Cookie: PVEAuthCookie={}\r\n", api.ticket());
    let path = "/nodes/pve/qemu/9000/status/current";
    let (code, reason, _, body) = raw_get(&sim, path, &cookie).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (596, "Connection timed out", "")
    );
    // The change was made before pveproxy gave up.
    let change = [("description", "changed")];
    let (code, _) = api
        .call(Method::PUT, "/nodes/pve/qemu/9000/config", &change)
        .await;
    assert_eq!(code, 596);
    let conf = api.get("/nodes/pve/qemu/9000/config").await;
    assert_eq!(conf["description"], "changed");
}

#[tokio::test]
async fn a_config_change_waits_for_the_clone_holding_the_new_vms_flock_and_times_out() {
    let mut model = quiet_model();
    // 8 GiB at 64 MiB/s: the copy takes 128 s.
    model.copy_bandwidth_mib_s = 64.0;
    model.flock_timeout_ms.update = 300;
    let (sim, api) = start_root_with(with_model(model)).await;
    let clone = [("newid", "120"), ("full", "1")];
    api.upid(Method::POST, "/nodes/pve/qemu/9000/clone", &clone)
        .await;
    let path = "/nodes/pve/qemu/120/config";
    api.expect_lock_timeout(Method::PUT, path, &[("cores", "2")], "120")
        .await;
    let stats = sim.capacity_stats().expect("on");
    let flock = &stats.locks["vm_config"];
    assert_eq!((flock.waits, flock.timeouts), (1, 1));
    assert_eq!(flock.wait_ms, 300);
    // Another clone of the same template does not wait: the template is only locked shared.
    let second = [("newid", "121"), ("full", "1")];
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &second)
        .await;
    assert!(upid.contains(":qmclone:9000:"));
}

#[tokio::test]
async fn allocations_on_one_local_storage_take_turns_and_the_late_one_times_out() {
    let mut model = quiet_model();
    model.alloc_ms_per_disk = 3_000;
    model.storage_lock_timeout_ms = 4_000;
    let (sim, api) = start_root_with(with_model(model)).await;
    let disk = [("scsi0", "local-lvm:1")];
    let first = api.start_create("201", &disk).await;
    let second = api.start_create("202", &disk).await;
    let third = api.start_create("203", &disk).await;
    // The second allocation starts when the first ends.
    assert_eq!(task_end(&sim, &second) - task_end(&sim, &first), 3_000);
    // The third would wait about 6 s for the lock, longer than its 4 s.
    let status = api.wait_task(&third).await;
    assert_eq!(
        status["exitstatus"],
        "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
    );
    let stats = sim.capacity_stats().expect("on");
    let lock = &stats.locks["storage"];
    assert_eq!((lock.waits, lock.timeouts), (2, 1));
    assert_eq!(api.wait_task(&second).await["exitstatus"], "OK");
}

/// Two nodes, each with a template on its own `local-lvm`.
fn two_nodes(capacity: Option<CapacityModel>) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.nodes.push(NodeConfig {
        name: "pve2".into(),
        cpus: 16,
        memory: Size(64 << 30),
        bridges: vec!["vmbr0".into()],
        online: true,
    });
    cfg.templates.push(TemplateConfig {
        vmid: 9001,
        node: "pve2".into(),
        name: "debian-12-template-2".into(),
        memory_mib: 2048,
        cores: 2,
        disk_storage: "local-lvm".into(),
        disk_size: Size(8 << 30),
        bridge: "vmbr0".into(),
    });
    cfg.capacity = capacity;
    cfg
}

/// Creates a VM with ten new disks on `node`'s `local-lvm`: it holds that storage's lock for
/// ten allocations, so that what is asked for meanwhile queues behind it.
async fn block_storage(api: &Api, node: &str, vmid: &str) -> String {
    let disks: Vec<(String, String)> = (0..10)
        .map(|i| (format!("scsi{i}"), "local-lvm:1".to_string()))
        .chain([("vmid".to_string(), vmid.to_string())])
        .collect();
    let params: Vec<(&str, &str)> = disks
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    api.upid(Method::POST, &format!("/nodes/{node}/qemu"), &params)
        .await
}

#[tokio::test]
async fn two_full_clones_on_one_storage_share_its_bandwidth() {
    let mut model = quiet_model();
    model.alloc_ms_per_disk = 200;
    // 8 GiB at 1 GiB/s: 8 s alone.
    model.copy_bandwidth_mib_s = 1024.0;
    let (sim, api) = start_root_with(two_nodes(Some(model))).await;
    let full = |newid: &'static str| [("newid", newid), ("full", "1")];
    // Alone on pve2: one allocation after the blocker, then 8 s of copy.
    let blocker = block_storage(&api, "pve2", "300").await;
    let alone = api
        .upid(Method::POST, "/nodes/pve2/qemu/9001/clone", &full("301"))
        .await;
    let near = |got: u64, want: u64| got.abs_diff(want) <= 1;
    let alone_ms = task_end(&sim, &alone) - task_end(&sim, &blocker);
    assert!(near(alone_ms, 200 + 8_000), "{alone_ms}");
    // Two on pve: `a` copies alone for the 200 ms of `b`'s allocation, then both share the
    // bandwidth until `a` is done: its allocation and copy take 16 s, twice the 8 s alone.
    // `b` copies the last 200 ms alone.
    let blocker = block_storage(&api, "pve", "310").await;
    let a = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &full("311"))
        .await;
    let b = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &full("312"))
        .await;
    let a_ms = task_end(&sim, &a) - task_end(&sim, &blocker);
    assert!(near(a_ms, 2 * 8_000), "{a_ms}");
    let b_after_a = task_end(&sim, &b) - task_end(&sim, &a);
    assert!(near(b_after_a, 200), "{b_after_a}");
    let stats = sim.capacity_stats().expect("on");
    assert_eq!(stats.max_concurrent_copies["local-lvm@pve"], 2);
    assert_eq!(stats.max_concurrent_copies["local-lvm@pve2"], 1);
}

#[tokio::test]
async fn without_a_capacity_section_calls_and_tasks_behave_as_before() {
    let mut cfg = two_nodes(None);
    cfg.task_durations_ms.clone = 5_000;
    let (sim, api) = start_root_with(cfg).await;
    let full = |newid: &'static str| [("newid", newid), ("full", "1")];
    let a = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &full("311"))
        .await;
    let b = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &full("312"))
        .await;
    // As before: a fixed duration, and the second clone queues behind the first on the
    // template's config lock (which real PVE takes shared; the model fixes that).
    assert_eq!(task_end(&sim, &b) - task_end(&sim, &a), 5_000);
    let locked = (500, "VM is locked (clone)\n");
    let path = "/nodes/pve/qemu/311/config";
    api.expect_message(Method::PUT, path, &[("cores", "2")], locked)
        .await;
    assert!(sim.capacity_stats().is_none());
    assert!(sim.stats().capacity.is_none());
    assert!(sim_get(&sim, "/_sim/stats").await.get("capacity").is_none());
}

#[tokio::test]
async fn an_import_shares_the_bandwidth_with_a_full_clone() {
    let mut model = quiet_model();
    model.alloc_ms_per_disk = 200;
    model.copy_bandwidth_mib_s = 1024.0;
    let (sim, api) = start_root_with(with_model(model)).await;
    let blocker = block_storage(&api, "pve", "310").await;
    // The template's 8 GiB disk, imported into a new VM and cloned at the same time.
    let disk = [(
        "scsi0",
        "local-lvm:0,import-from=local-lvm:base-9000-disk-0",
    )];
    let import = api.start_create("311", &disk).await;
    let clone = [("newid", "312"), ("full", "1")];
    let clone = api
        .upid(Method::POST, "/nodes/pve/qemu/9000/clone", &clone)
        .await;
    let import_ms = task_end(&sim, &import) - task_end(&sim, &blocker);
    assert!(import_ms.abs_diff(2 * 8_000) <= 1, "{import_ms}");
    let clone_after = task_end(&sim, &clone) - task_end(&sim, &import);
    assert!(clone_after.abs_diff(200) <= 1, "{clone_after}");
    // Past both ends on the simulator's clock, both finished.
    advance_clock(&sim, 20).await;
    assert_eq!(api.wait_task(&import).await["exitstatus"], "OK");
    assert_eq!(api.wait_task(&clone).await["exitstatus"], "OK");
}
