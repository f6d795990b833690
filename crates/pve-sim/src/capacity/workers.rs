//! The API worker pools of each node under the capacity model: a request holds one worker of
//! its node's pveproxy pool (non-protected methods) or pvedaemon pool (protected ones) while its
//! handler runs (VM flock waits included) and for its call's cost. Requests that find every
//! worker busy wait in arrival order; one that gets no answer within the proxy timeout is
//! answered `596 Connection timed out`, as pveproxy does. One that waited that long for a worker
//! is not carried out; one whose handler ran keeps its effect and its worker until its cost is
//! spent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::model::{CallClass, CapacityModel};
use crate::pipeline::Shared;

/// The reason phrase of a pveproxy timeout (wire-behaviour.md §3).
pub const PROXY_TIMEOUT_REASON: &str = "Connection timed out";

/// Which daemon runs a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    /// pveproxy: the non-protected methods.
    Proxy,
    /// pvedaemon: the protected methods.
    Daemon,
}

impl Pool {
    /// The pool of `method template`.
    pub fn of(method: &str, template: &str) -> Self {
        if CallClass::protected(method, template) {
            Pool::Daemon
        } else {
            Pool::Proxy
        }
    }

    /// `proxy` or `daemon`.
    pub fn name(self) -> &'static str {
        match self {
            Pool::Proxy => "proxy",
            Pool::Daemon => "daemon",
        }
    }
}

struct PoolState {
    workers: Arc<Semaphore>,
    waiting: AtomicU64,
}

/// Every node's pools, made when first used.
#[derive(Default)]
pub struct WorkerPools {
    pools: Mutex<HashMap<(String, Pool), Arc<PoolState>>>,
}

/// A worker held by a request.
pub struct Worker {
    permit: OwnedSemaphorePermit,
    node: String,
    pool: Pool,
    class: CallClass,
    arrived: Instant,
    acquired: Instant,
}

impl WorkerPools {
    fn pool(&self, node: &str, pool: Pool, workers: u32) -> Arc<PoolState> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry((node.to_string(), pool))
            .or_insert_with(|| {
                Arc::new(PoolState {
                    workers: Arc::new(Semaphore::new(workers.max(1) as usize)),
                    waiting: AtomicU64::new(0),
                })
            })
            .clone()
    }
}

/// The node whose daemons run a request: the `{node}` of its path when that is a cluster node
/// (pveproxy forwards it there), else the first node (the one the client talks to).
fn target_node(
    shared: &Shared,
    template: &str,
    raw: &std::collections::BTreeMap<String, Value>,
) -> String {
    let sim = shared.lock();
    let nodes = &sim.state.config.nodes;
    let named = raw
        .get("node")
        .and_then(Value::as_str)
        .filter(|_| template.contains("{node}"))
        .filter(|n| nodes.iter().any(|c| c.name == *n));
    named
        .or_else(|| nodes.first().map(|n| n.name.as_str()))
        .unwrap_or_default()
        .to_string()
}

/// Waits for a worker for `method template`; `None` when none was free within the proxy
/// timeout (the caller answers 596).
pub async fn enter(
    shared: &Arc<Shared>,
    model: &CapacityModel,
    method: &str,
    template: &str,
    raw: &std::collections::BTreeMap<String, Value>,
) -> Option<Worker> {
    let node = target_node(shared, template, raw);
    let pool = Pool::of(method, template);
    let workers = match pool {
        Pool::Proxy => model.proxy_workers,
        Pool::Daemon => model.daemon_workers,
    };
    let state = shared.workers.pool(&node, pool, workers);
    let arrived = Instant::now();
    let queued = state.workers.available_permits() == 0;
    let depth = state.waiting.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut sim = shared.lock();
        let c = sim.stats.capacity_mut().pool(&node, pool.name());
        c.workers = workers.max(1);
        c.requests += 1;
        if queued {
            c.queued += 1;
            c.max_queue_depth = c.max_queue_depth.max(depth);
        }
    }
    let timeout = Duration::from_millis(model.proxy_timeout_ms);
    let permit = tokio::time::timeout(timeout, state.workers.clone().acquire_owned()).await;
    state.waiting.fetch_sub(1, Ordering::SeqCst);
    let waited = arrived.elapsed().as_millis() as u64;
    let mut sim = shared.lock();
    let c = sim.stats.capacity_mut().pool(&node, pool.name());
    c.queue_wait_ms += if queued { waited } else { 0 };
    match permit {
        Ok(Ok(permit)) => Some(Worker {
            permit,
            node,
            pool,
            class: CallClass::of(method, template),
            arrived,
            acquired: Instant::now(),
        }),
        _ => {
            c.timeouts += 1;
            None
        }
    }
}

impl Worker {
    /// Holds the worker for the call's cost after its handler ran; `false` when the answer
    /// came later than the proxy timeout allows (the caller answers 596; the worker stays busy
    /// until the cost is spent).
    pub async fn finish(self, shared: &Arc<Shared>, model: &CapacityModel) -> bool {
        let vms = if self.class == CallClass::ListVms {
            let sim = shared.lock();
            sim.state
                .vms
                .values()
                .filter(|v| v.node == self.node)
                .count() as u64
        } else {
            0
        };
        let done = Instant::now() + Duration::from_millis(model.cost_ms(self.class, vms));
        let deadline = self.arrived + Duration::from_millis(model.proxy_timeout_ms);
        if done <= deadline {
            tokio::time::sleep_until(done).await;
            self.release(shared);
            return true;
        }
        tokio::time::sleep_until(deadline).await;
        {
            let mut sim = shared.lock();
            let c = sim.stats.capacity_mut().pool(&self.node, self.pool.name());
            c.timeouts += 1;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(done).await;
            self.release(&shared);
        });
        false
    }

    fn release(self, shared: &Shared) {
        let busy = self.acquired.elapsed().as_millis() as u64;
        let mut sim = shared.lock();
        sim.stats
            .capacity_mut()
            .pool(&self.node, self.pool.name())
            .busy_ms += busy;
        drop(self.permit);
    }
}
