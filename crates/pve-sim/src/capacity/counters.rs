//! The capacity model's counters, served in `/_sim/stats` under `capacity` so that a benchmark
//! can report utilisation: per node and pool the busy worker time and queueing, per lock kind
//! the waits and timeouts, per storage the most copies at once.

use std::collections::BTreeMap;

use serde::Serialize;

/// All capacity counters since start (or the last stats reset).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CapacityStats {
    /// Per node, per pool (`proxy`, `daemon`).
    pub pools: BTreeMap<String, BTreeMap<String, PoolCounters>>,
    /// Per lock kind (`vm_config`, `storage`).
    pub locks: BTreeMap<String, LockCounters>,
    /// The most full-clone copies that shared each storage's bandwidth at once
    /// (`storage@node`, or `storage` when shared).
    pub max_concurrent_copies: BTreeMap<String, u64>,
}

/// One worker pool of one node.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PoolCounters {
    /// Its workers.
    pub workers: u32,
    /// Requests it ran (or that timed out waiting for it).
    pub requests: u64,
    /// Requests that found every worker busy and waited.
    pub queued: u64,
    /// The most requests waiting at once.
    pub max_queue_depth: u64,
    /// Total time requests waited for a worker, ms.
    pub queue_wait_ms: u64,
    /// Total time workers were busy, ms (utilisation = busy_ms / (workers × elapsed)).
    pub busy_ms: u64,
    /// Requests answered `596 Connection timed out`.
    pub timeouts: u64,
}

/// One kind of lock.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LockCounters {
    /// Takers that found it held and waited.
    pub waits: u64,
    /// Total time waited, ms.
    pub wait_ms: u64,
    /// Takers that gave up after the timeout.
    pub timeouts: u64,
}

impl crate::state::Sim {
    /// The capacity counters: the pools' and VM flocks' (kept in the stats) with the storages'
    /// (kept with the storage locks); `None` when the model is off.
    pub fn capacity_stats(&self) -> Option<CapacityStats> {
        self.state.config.capacity.as_ref()?;
        let storages = &self.storages;
        let mut counters = self.stats.capacity.clone().unwrap_or_default();
        counters
            .locks
            .insert("storage".into(), storages.lock_counters.clone());
        counters.max_concurrent_copies = storages.max_concurrent_copies.clone();
        Some(counters)
    }
}

impl CapacityStats {
    /// The counters of `node`'s `pool`.
    pub fn pool(&mut self, node: &str, pool: &str) -> &mut PoolCounters {
        self.pools
            .entry(node.to_string())
            .or_default()
            .entry(pool.to_string())
            .or_default()
    }

    /// Records a wait of `wait_ms` for a lock of `kind`, which timed out or not.
    pub fn lock_wait(&mut self, kind: &str, wait_ms: u64, timed_out: bool) {
        let c = self.locks.entry(kind.to_string()).or_default();
        c.waits += 1;
        c.wait_ms += wait_ms;
        c.timeouts += u64::from(timed_out);
    }
}
