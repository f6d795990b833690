//! The floor: the shortest makespan any client could reach for a workload on a cluster that
//! follows a [`CapacityModel`]. It is the largest of five lower bounds, each a resource that every
//! machine needs and that cannot be shared faster than the model allows:
//!
//! 1. the busiest node's pvedaemon pool: the protected calls' worker time / `daemon_workers`;
//! 2. the busiest node's pveproxy pool: the other calls' worker time / `proxy_workers`;
//! 3. the busiest storage's allocation lock: allocations × `alloc_ms_per_disk`, one at a time,
//!    and then what the last machine to allocate still has to do (its create task's remainder,
//!    the poll that sees it end, its start and the poll that sees that end);
//! 4. the busiest storage's copy bandwidth: bytes copied by full clones / bandwidth, after the
//!    first allocation and before the last machine's start;
//! 5. one machine's critical path: its calls one after another, each task as long as it takes
//!    alone (no queueing, full bandwidth).
//!
//! Machines are spread evenly over the nodes; the busiest node has `ceil(machines / nodes)`.

use std::time::Duration;

use super::model::{CallClass, CapacityModel};

/// How each machine gets its disks.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `POST /nodes/{node}/qemu` with new disks of these sizes (bytes; allocation only).
    Create {
        /// Disk sizes.
        disks: Vec<u64>,
    },
    /// A full clone of a template whose disks have these sizes (bytes, all copied).
    FullClone {
        /// Disk sizes.
        disks: Vec<u64>,
    },
    /// A linked clone of a template with this many disks.
    LinkedClone {
        /// Number of disks.
        disks: u64,
    },
}

impl Source {
    fn disk_count(&self) -> u64 {
        match self {
            Source::Create { disks } | Source::FullClone { disks } => disks.len() as u64,
            Source::LinkedClone { disks } => *disks,
        }
    }

    fn copied_bytes(&self) -> u64 {
        match self {
            Source::FullClone { disks } => disks.iter().sum(),
            _ => 0,
        }
    }
}

/// Where the machines' disks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageScope {
    /// One node-local storage per node (its own lock and bandwidth per node).
    NodeLocal,
    /// One shared storage for the whole cluster (one lock, one bandwidth).
    Shared,
}

/// N machines of one shape over K nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Number of machines.
    pub machines: u64,
    /// Number of nodes (at least 1).
    pub nodes: u64,
    /// The storage id their disks go to (for its bandwidth).
    pub storage: String,
    /// Whether that storage is node-local or shared.
    pub scope: StorageScope,
    /// How each machine gets its disks.
    pub source: Source,
    /// Memory of each machine, MiB (start time).
    pub memory_mib: u64,
    /// Whether each machine is started.
    pub start: bool,
    /// The synchronous calls each machine needs at least, in order.
    pub calls: Vec<CallClass>,
}

impl Workload {
    /// `machines` machines created with `disks` on node-local `storage` and started, each with
    /// [`Workload::minimal_calls`].
    pub fn new(machines: u64, nodes: u64, storage: &str, source: Source, memory_mib: u64) -> Self {
        let calls = Self::minimal_calls(&source, true);
        Self {
            machines,
            nodes,
            storage: storage.to_string(),
            scope: StorageScope::NodeLocal,
            source,
            memory_mib,
            start: true,
            calls,
        }
    }

    /// The fewest calls a machine needs: the create (or clone) request, one poll of its task
    /// (the one that sees it stopped), and when started the start request and one poll of it.
    /// No `nextid` (the VMID comes from the client's inventory), no config read or write.
    pub fn minimal_calls(source: &Source, start: bool) -> Vec<CallClass> {
        let first = match source {
            Source::Create { .. } => CallClass::Create,
            _ => CallClass::Clone,
        };
        let mut calls = vec![first, CallClass::TaskStatus];
        if start {
            calls.extend([CallClass::Power, CallClass::TaskStatus]);
        }
        calls
    }
}

/// The five lower bounds of a workload's makespan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorBounds {
    /// The busiest node's pvedaemon pool.
    pub daemon_pool: Duration,
    /// The busiest node's pveproxy pool.
    pub proxy_pool: Duration,
    /// The busiest storage's allocation lock.
    pub storage_lock: Duration,
    /// The busiest storage's copy bandwidth.
    pub storage_bandwidth: Duration,
    /// One machine alone.
    pub critical_path: Duration,
}

impl FloorBounds {
    /// The floor: the largest bound.
    pub fn floor(&self) -> Duration {
        [
            self.daemon_pool,
            self.proxy_pool,
            self.storage_lock,
            self.storage_bandwidth,
            self.critical_path,
        ]
        .into_iter()
        .max()
        .unwrap_or_default()
    }
}

/// Whether calls of `class` run in pvedaemon (the protected ones).
pub fn runs_in_daemon(class: CallClass) -> bool {
    !matches!(class, CallClass::LightRead | CallClass::ConfigRead)
}

fn ms(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0) / 1000.0)
}

/// The five bounds of `workload` under `model`.
pub fn bounds(model: &CapacityModel, workload: &Workload) -> FloorBounds {
    let nodes = workload.nodes.max(1);
    let per_node = workload.machines.div_ceil(nodes);
    let per_storage = match workload.scope {
        StorageScope::NodeLocal => per_node,
        StorageScope::Shared => workload.machines,
    };
    let pool_ms = |daemon: bool| {
        workload
            .calls
            .iter()
            .filter(|c| runs_in_daemon(**c) == daemon)
            .map(|c| model.cost_ms(*c, 0))
            .sum::<u64>()
    };
    let workers = |n: u32| f64::from(n.max(1));
    let daemon = per_node as f64 * pool_ms(true) as f64 / workers(model.daemon_workers);
    let proxy = per_node as f64 * pool_ms(false) as f64 / workers(model.proxy_workers);
    let disks = workload.source.disk_count();
    let alloc_one = (disks * model.alloc_ms_per_disk) as f64;
    let bw = model.bytes_per_ms(&workload.storage);
    let copy_one = workload.source.copied_bytes() as f64 / bw;
    let task_one = match workload.source {
        Source::Create { .. } => model.create_task_ms as f64 + alloc_one,
        Source::FullClone { .. } => alloc_one + copy_one,
        Source::LinkedClone { .. } => alloc_one + model.linked_clone_ms as f64,
    };
    let start_one = if workload.start {
        model.start_ms(workload.memory_mib) as f64
    } else {
        0.0
    };
    let calls_one: u64 = workload.calls.iter().map(|c| model.cost_ms(*c, 0)).sum();
    // A call's handler runs as soon as it has a worker and its answer leaves after its cost:
    // a task begins when its call arrives, and a poll tells of a task's end one cost later.
    let poll = model.cost_ms(CallClass::TaskStatus, 0) as f64;
    let start_tail = if workload.start {
        poll + start_one + poll
    } else {
        poll
    };
    // What a machine does after its disks are allocated (the lock's bound) or copied.
    let after_alloc = match workload.source {
        Source::Create { .. } => model.create_task_ms as f64,
        Source::FullClone { .. } => copy_one,
        Source::LinkedClone { .. } => model.linked_clone_ms as f64,
    } + start_tail;
    let copying = match workload.source {
        Source::FullClone { .. } => alloc_one + per_storage as f64 * copy_one + start_tail,
        _ => 0.0,
    };
    FloorBounds {
        daemon_pool: ms(daemon),
        proxy_pool: ms(proxy),
        storage_lock: ms(per_storage as f64 * alloc_one + after_alloc),
        storage_bandwidth: ms(copying),
        critical_path: ms(calls_one as f64 + task_one + start_one),
    }
}

/// The shortest possible makespan of `workload` under `model` (the largest of [`bounds`]).
pub fn floor(model: &CapacityModel, workload: &Workload) -> Duration {
    bounds(model, workload).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn create(machines: u64, nodes: u64) -> Workload {
        let disks = vec![8 * GIB];
        Workload::new(machines, nodes, "local-lvm", Source::Create { disks }, 2048)
    }

    #[test]
    fn one_machine_alone_is_bound_by_its_critical_path() {
        let b = bounds(&CapacityModel::pve_default(), &create(1, 1));
        // 140 ms of calls + create (500 + 200) + start (3000 + 2 GiB × 100).
        assert_eq!(b.critical_path, Duration::from_millis(4_040));
        // Its allocation, then create's 500 ms, a 5 ms poll, the 3.2 s start and a 5 ms poll.
        assert_eq!(b.storage_lock, Duration::from_millis(3_910));
        assert_eq!(b.floor(), b.critical_path);
    }

    #[test]
    fn ten_machines_on_one_node_queue_on_the_lock_and_the_last_one_still_has_to_start() {
        let b = bounds(&CapacityModel::pve_default(), &create(10, 1));
        // Calls 100 + 5 + 30 + 5 = 140 ms, all in pvedaemon: 10 × 140 / 3 workers.
        assert_eq!(b.daemon_pool, Duration::from_nanos(466_666_667));
        assert_eq!(b.proxy_pool, Duration::ZERO);
        // 10 allocations × 200 ms on the node's one storage, then the last machine's
        // 500 ms create remainder, 5 ms poll, 3.2 s start and 5 ms poll.
        assert_eq!(b.storage_lock, Duration::from_millis(5_710));
        assert_eq!(b.storage_bandwidth, Duration::ZERO);
        assert_eq!(b.critical_path, Duration::from_millis(4_040));
        assert_eq!(b.floor(), b.storage_lock);
    }

    #[test]
    fn many_created_machines_are_bound_by_the_storage_lock() {
        // 1000 over 5 nodes: 200 per node, 200 × 200 ms of allocation on each local storage,
        // then the last one's 3.71 s.
        let model = CapacityModel::pve_default();
        assert_eq!(
            floor(&model, &create(1000, 5)),
            Duration::from_millis(43_710)
        );
        // On one shared storage all 1000 allocations take turns.
        let mut shared = create(1000, 5);
        shared.scope = StorageScope::Shared;
        assert_eq!(floor(&model, &shared), Duration::from_millis(203_710));
    }

    #[test]
    fn full_clones_are_bound_by_the_storage_bandwidth() {
        let source = Source::FullClone {
            disks: vec![8 * GIB],
        };
        let w = Workload::new(10, 1, "local-lvm", source, 2048);
        let b = bounds(&CapacityModel::pve_default(), &w);
        // The first 200 ms allocation, 10 × 8192 MiB at 500 MiB/s, then the last one's poll,
        // 3.2 s start and poll.
        assert_eq!(b.storage_bandwidth, Duration::from_millis(167_250));
        // 140 ms of calls + 200 ms allocation + 16.384 s copy + 3.2 s start.
        assert_eq!(b.critical_path, Duration::from_millis(19_924));
        assert_eq!(b.floor(), b.storage_bandwidth);
    }

    #[test]
    fn one_slow_daemon_worker_bounds_the_workload() {
        let mut model = CapacityModel::pve_default();
        model.daemon_workers = 1;
        model.call_cost_ms.create = 1_000;
        // 10 × (1000 + 5 + 30 + 5) ms on one worker.
        assert_eq!(floor(&model, &create(10, 1)), Duration::from_millis(10_400));
        // Reads go to pveproxy's 3 workers: 10 × 10 ms / 3 more there, nothing more in pvedaemon.
        let mut w = create(10, 1);
        w.calls.push(CallClass::ConfigRead);
        let b = bounds(&model, &w);
        assert_eq!(b.proxy_pool, Duration::from_nanos(33_333_333));
        assert_eq!(b.daemon_pool, Duration::from_millis(10_400));
    }

    #[test]
    fn minimal_calls_are_the_request_and_one_poll_per_task() {
        let calls = Workload::minimal_calls(&Source::LinkedClone { disks: 1 }, false);
        assert_eq!(calls, vec![CallClass::Clone, CallClass::TaskStatus]);
    }
}
