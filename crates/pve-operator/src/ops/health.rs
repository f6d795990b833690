//! What `/healthz` and `/readyz` answer.
//!
//! `/healthz` answers 200 while the process serves HTTP at all (a liveness probe that restarts
//! a wedged process, nothing more). `/readyz` answers 200 only when the instance does what it
//! is there for:
//!
//! * leading (or running without leader election) and both controllers' caches (MachineRequest
//!   and ProxmoxCluster) have completed their first list: 200 `ok`;
//! * standing by for the lease of another replica: 200 `standby` — a standby has nothing to
//!   sync, and reporting it unready would stall every rolling update of a two-replica
//!   Deployment (the new pod could never become ready while the old one leads);
//! * starting, caches not yet synced, or shutting down: 503 with the reason.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::Store;
use pve_operator_api::{MachineRequest, ProxmoxCluster};

/// Resolves once `store` has completed its first list (false: its writer is gone).
///
/// `Store::wait_until_ready` wakes only the last of several waiters (kube-runtime 5 keeps one
/// waker in its one-shot channel), and the controller waits on the same store; so the wait is
/// renewed every 200 ms, which polls the store's state again and finds it ready.
async fn synced<K>(store: Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    loop {
        if let Ok(result) =
            tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await
        {
            return result.is_ok();
        }
    }
}

/// The instance's part in leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not yet running anything.
    Starting,
    /// Waiting for the lease held by another replica.
    Standby,
    /// Running the controllers (the lease holder, or leader election is off).
    Leading,
    /// Shutting down.
    Stopping,
}

#[derive(Debug)]
struct State {
    role: Role,
    /// Counts controller runs; a cache reports into the run it was made for only.
    term: u64,
    requests_synced: bool,
    clusters_synced: bool,
}

/// Readiness, shared by the controllers (which report their caches) and the HTTP server.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<Mutex<State>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                role: Role::Starting,
                term: 0,
                requests_synced: false,
                clusters_synced: false,
            })),
        }
    }
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the role. Entering [`Role::Leading`] starts a new term whose caches are unsynced.
    pub fn set_role(&self, role: Role) {
        let mut state = self.lock();
        if role == Role::Leading && state.role != Role::Leading {
            state.term += 1;
            state.requests_synced = false;
            state.clusters_synced = false;
        }
        state.role = role;
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.lock().role
    }

    /// Marks the MachineRequest cache synced once `store` has completed its first list.
    pub fn watch_machine_requests(&self, store: Store<MachineRequest>) {
        self.watch(move |s| s.requests_synced = true, synced(store));
    }

    /// Marks the ProxmoxCluster cache synced once `store` has completed its first list.
    pub fn watch_proxmox_clusters(&self, store: Store<ProxmoxCluster>) {
        self.watch(move |s| s.clusters_synced = true, synced(store));
    }

    fn watch(
        &self,
        mark: impl FnOnce(&mut State) + Send + 'static,
        ready: impl std::future::Future<Output = bool> + Send + 'static,
    ) {
        let term = self.lock().term;
        let health = self.clone();
        tokio::spawn(async move {
            if ready.await {
                let mut state = health.lock();
                if state.term == term {
                    mark(&mut state);
                }
            }
        });
    }

    /// Whether the instance is ready, and the text to say so.
    pub fn readiness(&self) -> (bool, &'static str) {
        let state = self.lock();
        match state.role {
            Role::Starting => (false, "starting"),
            Role::Stopping => (false, "shutting down"),
            Role::Standby => (true, "standby: another replica holds the lease"),
            Role::Leading => match (state.requests_synced, state.clusters_synced) {
                (true, true) => (true, "ok"),
                (false, _) => (false, "the MachineRequest cache is not synced yet"),
                (true, false) => (false, "the ProxmoxCluster cache is not synced yet"),
            },
        }
    }
}
