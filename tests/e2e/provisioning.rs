//! What provisioning costs Proxmox (issue 16): a request is made Ready from what its own tasks
//! left, without reading its VM again, and a node whose locks time out is given fewer of the
//! controller's tasks at once.

use pve_sim::capacity::model::CapacityModel;
use serde_json::{Value, json};

use crate::support::{Harness, small_spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_made_ready_from_what_its_own_tasks_left_without_reading_its_vm_again() {
    // No inventory read between the create and Ready (the first is a minute away), so nothing
    // but the tasks' hand-offs can spare the reads.
    let h = Harness::start_with_args(
        "handoff",
        |options| {
            options.config.task_durations_ms.create = 300;
            options.config.task_durations_ms.start = 300;
        },
        |args| args.inventory_interval = 60,
    )
    .await;
    h.apply("lean", small_spec()).await;
    h.wait_ready("lean").await;

    assert_eq!(h.calls("POST /nodes/{node}/qemu"), 1);
    assert_eq!(h.calls("POST /nodes/{node}/qemu/{vmid}/status/start"), 1);
    // The config is read once, after the create (Proxmox adds keys to what was sent), to
    // verify the marker and plan drift; the start's pass reuses it.
    assert_eq!(h.calls("GET /nodes/{node}/qemu/{vmid}/config"), 1);
    // The create left the VM stopped and the start left it running: neither is asked again,
    // and a VM configured while stopped and then started has nothing pending.
    assert_eq!(h.calls("GET /nodes/{node}/qemu/{vmid}/status/current"), 0);
    assert_eq!(h.calls("GET /nodes/{node}/qemu/{vmid}/pending"), 0);
    assert!(h.calls("GET /cluster/nextid") <= 1);
    h.stop().await;
}

/// The value of `pve_operator_node_task_window` for `node` of the cluster at `url`, from the
/// controller's metrics as `/metrics` serves them.
fn task_window(url: &str, node: &str) -> Option<u64> {
    let registry = pve_operator::ops::metrics::Metrics::default().registry();
    let text = pve_operator::ops::metrics::encode(&registry);
    text.lines()
        .filter(|l| l.starts_with("pve_operator_node_task_window{"))
        .filter(|l| l.contains(&format!("node=\"{node}\"")) && l.contains(url))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn stopped_spec() -> Value {
    let mut spec = small_spec();
    spec["powerState"] = json!("Stopped");
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_storage_lock_times_out_is_given_fewer_tasks_at_once_and_all_still_succeed() {
    // Each allocation holds the storage lock 400 ms and a waiter gives up after 1 s: of six
    // creates sent at once, the fourth and later time out.
    let mut model = CapacityModel::pve_default();
    model.alloc_ms_per_disk = 400;
    model.storage_lock_timeout_ms = 1_000;
    let h = Harness::start_with_args(
        "window",
        |options| options.config.capacity = Some(model),
        |args| args.max_tasks_per_node = 8,
    )
    .await;
    let names = ["win-a", "win-b", "win-c", "win-d", "win-e", "win-f"];
    for name in names {
        h.apply(name, stopped_spec()).await;
    }
    let mut ready = Vec::new();
    for name in names {
        ready.push(h.wait_ready(name).await);
    }
    let timeouts = h
        .sim
        .capacity_stats()
        .and_then(|s| s.locks.get("storage").map(|l| l.timeouts))
        .unwrap_or_default();
    assert!(timeouts >= 1, "the storage lock timed out: {timeouts}");
    // Eight at first; halved at each timeout; the six creates' successes cannot grow it back
    // (one slot per window's worth of successes after a timeout).
    let window = task_window(&h.sim.url(), "pve").expect("the window gauge of node pve");
    assert!(
        window < 8,
        "after {timeouts} lock timeouts the node's window is {window}"
    );
    for request in ready {
        let status = request.status.expect("status");
        assert!(status.failed_task.is_none(), "{:?}", status.failed_task);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_requests_on_one_node_cost_one_create_one_start_and_one_config_read_each() {
    // A burst on one node under the capacity model: the tasks queue on the storage lock and the
    // window, and passes race with the inventory reads and with their own status writes. None
    // of it may cost a second start (a pass whose status write was refused used to forget the
    // start it had sent) or a re-read of what a task left.
    let h = Harness::start_with_args(
        "burst",
        |options| options.config.capacity = Some(CapacityModel::pve_default()),
        |args| {
            args.inventory_interval = 10;
            args.task_poll_interval = 500;
        },
    )
    .await;
    let names: Vec<String> = (0..60).map(|i| format!("burst-{i:02}")).collect();
    for name in &names {
        h.apply(name, small_spec()).await;
    }
    for name in &names {
        h.wait_ready(name).await;
    }
    let query = pve_client::api::tasks::TaskListQuery {
        errors: Some(true),
        limit: Some(500),
        ..Default::default()
    };
    let failed = h.pve.tasks("pve", &query).await.expect("the node's tasks");
    assert!(failed.is_empty(), "no task failed: {failed:?}");
    assert_eq!(h.calls("POST /nodes/{node}/qemu"), 60);
    assert_eq!(h.calls("POST /nodes/{node}/qemu/{vmid}/status/start"), 60);
    let configs = h.calls("GET /nodes/{node}/qemu/{vmid}/config");
    let statuses = h.calls("GET /nodes/{node}/qemu/{vmid}/status/current");
    assert!(
        configs <= 66 && statuses <= 6,
        "about one config read and no status read per machine: {configs} and {statuses}"
    );
    h.stop().await;
}
