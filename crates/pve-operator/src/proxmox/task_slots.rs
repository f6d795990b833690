//! How many of the controller's tasks each node runs at once. A fixed bound is either too low
//! for a node that could do more (creates queue on the storage lock, starts run side by side)
//! or too high for one that cannot (every task beyond what the node's locks let through fails
//! with a lock timeout). So each node has a window that adapts, as TCP's does:
//!
//! * it starts at the `initial` size and grows by one task per task that succeeds (doubling per
//!   round of tasks) until the first congestion, then by one task per window's worth of
//!   successes;
//! * when Proxmox answers with a lock timeout (a task's `can't lock file ... got timeout`, a
//!   pmxcfs `got lock request timeout`, a worker that timed out), the window halves, and grows
//!   again from there;
//! * it never exceeds `ceiling` (`--max-tasks-per-node`) nor falls below one.
//!
//! A request that finds no slot waits to be woken when one frees, rather than polling.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{Trigger, Wake};

/// Whether a Proxmox answer (a task's exit status or an error message) says that the node was
/// too busy for the request: a lock that was not had in time, or a worker that timed out.
pub fn is_congestion(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "got timeout",
        "got lock request timeout",
        "connection timed out",
    ]
    .iter()
    .any(|t| text.contains(t))
}

/// What one finished task says about its node's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// It succeeded: the node could take it.
    Succeeded,
    /// It failed with a lock or worker timeout: the node had too much to do.
    Congested,
    /// It failed for another reason: says nothing about load.
    Other,
}

#[derive(Debug)]
struct Window {
    running: usize,
    limit: f64,
    /// Below it the window grows by one per success (slow start); above, by one per window.
    threshold: f64,
}

#[derive(Debug)]
struct Inner {
    nodes: Mutex<HashMap<String, Window>>,
    waiting: Mutex<VecDeque<Wake>>,
    trigger: Trigger,
    initial: f64,
    ceiling: f64,
    /// The cluster's API URL, for the window gauge.
    cluster: String,
}

/// The task windows of one Proxmox cluster's nodes.
#[derive(Debug, Clone)]
pub struct NodeWindows {
    inner: Arc<Inner>,
}

/// One task's place in its node's window; freed when dropped (the tracker drops it when it sees
/// the task end), which wakes a waiting request.
#[derive(Debug)]
pub struct NodeSlot {
    inner: Arc<Inner>,
    node: String,
}

impl NodeWindows {
    /// Windows of the nodes of the cluster at `cluster` (its API URL, for the
    /// `pve_operator_node_task_window` gauge) that start at `initial` tasks per node and never
    /// exceed `ceiling`; a request waiting for a slot is woken through `trigger`.
    pub fn new(cluster: &str, trigger: Trigger, initial: usize, ceiling: usize) -> Self {
        let ceiling = ceiling.max(1) as f64;
        NodeWindows {
            inner: Arc::new(Inner {
                nodes: Mutex::default(),
                waiting: Mutex::default(),
                trigger,
                initial: (initial.max(1) as f64).min(ceiling),
                ceiling,
                cluster: cluster.to_string(),
            }),
        }
    }

    /// A slot for one task on `node`, or `None` when its window is full. With `owner`, a full
    /// window registers it to be woken when a slot of any node frees.
    pub fn reserve(&self, node: &str, owner: Option<&Wake>) -> Option<NodeSlot> {
        let mut nodes = self.inner.lock_nodes();
        let window = self.inner.window(&mut nodes, node);
        if (window.running as f64) < window.limit.floor() {
            window.running += 1;
            return Some(NodeSlot {
                inner: self.inner.clone(),
                node: node.to_string(),
            });
        }
        if let Some(owner) = owner {
            self.inner.wait(owner);
        }
        None
    }

    /// How many more tasks `node` may take now.
    pub fn free(&self, node: &str) -> usize {
        let mut nodes = self.inner.lock_nodes();
        let window = self.inner.window(&mut nodes, node);
        (window.limit.floor() as usize).saturating_sub(window.running)
    }

    /// Whether every one of `nodes` is full; if so, `owner` is woken when a slot frees.
    pub fn all_full_or_wait(&self, nodes: &[&str], owner: &Wake) -> bool {
        let mut guard = self.inner.lock_nodes();
        let full = nodes.iter().all(|node| {
            let window = self.inner.window(&mut guard, node);
            window.running as f64 >= window.limit.floor()
        });
        if full {
            self.inner.wait(owner);
        }
        full
    }

    /// The current window of `node`, in tasks.
    pub fn limit(&self, node: &str) -> usize {
        let mut nodes = self.inner.lock_nodes();
        self.inner.window(&mut nodes, node).limit.floor() as usize
    }

    /// Adapts `node`'s window to what one of its tasks said.
    pub fn feedback(&self, node: &str, signal: Signal) {
        let mut nodes = self.inner.lock_nodes();
        let ceiling = self.inner.ceiling;
        let window = self.inner.window(&mut nodes, node);
        let before = window.limit.floor();
        match signal {
            Signal::Succeeded if window.limit < window.threshold => {
                window.limit = (window.limit + 1.0).min(ceiling);
            }
            Signal::Succeeded => {
                window.limit = (window.limit + 1.0 / window.limit.max(1.0)).min(ceiling);
            }
            Signal::Congested => {
                let halved = (window.limit / 2.0).max(1.0);
                tracing::info!(
                    %node,
                    from = window.limit.floor(),
                    to = halved.floor(),
                    "Proxmox answered with a lock timeout; fewer tasks at once on this node"
                );
                window.limit = halved;
                window.threshold = halved;
            }
            Signal::Other => {}
        }
        let limit = window.limit.floor();
        drop(nodes);
        crate::ops::metrics::set_node_task_window(&self.inner.cluster, node, limit as usize);
        // A window grown by a whole slot has room for one more waiting request (a freed slot
        // wakes its own when it is dropped).
        if limit > before {
            self.inner.wake_waiting(1);
        }
    }
}

impl Inner {
    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn window<'a>(&self, nodes: &'a mut HashMap<String, Window>, node: &str) -> &'a mut Window {
        nodes.entry(node.to_string()).or_insert_with(|| {
            crate::ops::metrics::set_node_task_window(&self.cluster, node, self.initial as usize);
            Window {
                running: 0,
                limit: self.initial,
                threshold: self.ceiling,
            }
        })
    }

    fn wait(&self, owner: &Wake) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if !waiting.contains(owner) {
            waiting.push_back(owner.clone());
        }
    }

    /// Wakes up to `count` waiting requests, the longest waiting first.
    fn wake_waiting(&self, count: usize) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let count = count.min(waiting.len());
        for owner in waiting.drain(..count) {
            let _ = self.trigger.send(owner);
        }
    }
}

impl Drop for NodeSlot {
    fn drop(&mut self) {
        {
            let mut nodes = self.inner.lock_nodes();
            if let Some(window) = nodes.get_mut(&self.node) {
                window.running = window.running.saturating_sub(1);
            }
        }
        self.inner.wake_waiting(1);
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::ObjectRef;
    use tokio::sync::mpsc;

    use super::*;

    fn owner(name: &str) -> Wake {
        Wake::Request(ObjectRef::new(name).within("ns"))
    }

    #[test]
    fn a_full_window_wakes_its_waiters_one_per_freed_slot_longest_waiting_first() {
        let (trigger, mut woken) = mpsc::unbounded_channel();
        let windows = NodeWindows::new("https://pve.test:8006/api2/json", trigger, 2, 8);
        let a = windows.reserve("pve", None).expect("first slot");
        let _b = windows.reserve("pve", None).expect("second slot");
        assert!(windows.reserve("pve", Some(&owner("x"))).is_none());
        assert!(windows.all_full_or_wait(&["pve"], &owner("y")));
        assert!(!windows.all_full_or_wait(&["pve", "pve2"], &owner("z")));
        assert!(woken.try_recv().is_err());
        drop(a);
        assert_eq!(woken.try_recv().ok(), Some(owner("x")));
        assert!(woken.try_recv().is_err());
        assert_eq!(windows.free("pve"), 1);
    }

    #[test]
    fn the_window_doubles_per_round_until_congestion_then_halves_and_grows_by_one_per_round() {
        let (trigger, _woken) = mpsc::unbounded_channel();
        let windows = NodeWindows::new("https://pve.test:8006/api2/json", trigger, 4, 64);
        for _ in 0..4 {
            windows.feedback("pve", Signal::Succeeded);
        }
        assert_eq!(windows.limit("pve"), 8);
        windows.feedback("pve", Signal::Congested);
        assert_eq!(windows.limit("pve"), 4);
        windows.feedback("pve", Signal::Other);
        assert_eq!(windows.limit("pve"), 4);
        // Past the threshold: four successes (one window's worth) add one slot.
        for _ in 0..4 {
            windows.feedback("pve", Signal::Succeeded);
        }
        assert_eq!(windows.limit("pve"), 4, "4 + 4 × 1/4 is just under 5");
        windows.feedback("pve", Signal::Succeeded);
        assert_eq!(windows.limit("pve"), 5);
        // Other nodes keep their own window.
        assert_eq!(windows.limit("pve2"), 4);
    }

    #[test]
    fn the_window_stays_between_one_and_the_ceiling() {
        let (trigger, _woken) = mpsc::unbounded_channel();
        let windows = NodeWindows::new("https://pve.test:8006/api2/json", trigger, 16, 6);
        assert_eq!(windows.limit("pve"), 6, "the initial size is capped");
        for _ in 0..10 {
            windows.feedback("pve", Signal::Succeeded);
        }
        assert_eq!(windows.limit("pve"), 6);
        for _ in 0..10 {
            windows.feedback("pve", Signal::Congested);
        }
        assert_eq!(windows.limit("pve"), 1);
    }

    #[test]
    fn lock_and_worker_timeouts_are_congestion_and_other_failures_are_not() {
        assert!(is_congestion(
            "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
        ));
        assert!(is_congestion(
            "unable to create VM 100 - cfs-lock 'storage-ceph' error: got lock request timeout"
        ));
        assert!(is_congestion("596 Connection timed out"));
        assert!(!is_congestion("VM 100 already running"));
        assert!(!is_congestion("storage 'x' does not exist"));
    }
}
