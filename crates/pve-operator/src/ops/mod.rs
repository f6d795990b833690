//! Operations: Prometheus metrics, health and readiness, and leader election, served next to
//! the controllers by `pve-operator run` (see [`crate::cli::run`]).

pub mod health;
pub mod leader;
pub mod metrics;
pub mod server;

pub use health::{Health, Role};
pub use metrics::Metrics;

use kube::runtime::reflector::Store;
use pve_operator_api::{MachineRequest, ProxmoxCluster};

/// What the controllers report to the operations endpoints: metrics and cache readiness.
/// Cheap to clone; the default reports into values nobody reads.
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    /// The metrics.
    pub metrics: Metrics,
    /// Readiness.
    pub health: Health,
}

impl Instruments {
    /// The MachineRequest controller's cache: readiness waits for it, and the phase and task
    /// gauges read it.
    pub fn machine_request_cache(&self, store: Store<MachineRequest>) {
        self.metrics.set_machine_requests(store.clone());
        self.health.watch_machine_requests(store);
    }

    /// The ProxmoxCluster controller's cache: readiness waits for it.
    pub fn proxmox_cluster_cache(&self, store: Store<ProxmoxCluster>) {
        self.health.watch_proxmox_clusters(store);
    }

    /// Runs one reconcile of `controller` and counts it: an `Err` as an error with `reason`.
    pub async fn timed<T, E>(
        self,
        controller: &'static str,
        reason: &'static str,
        reconcile: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = std::time::Instant::now();
        let result = reconcile.await;
        self.metrics.reconciled(
            controller,
            started.elapsed(),
            result.is_err().then_some(reason),
        );
        result
    }

    /// Counts one reconcile (see [`Metrics::reconciled`]).
    pub fn reconciled(
        &self,
        controller: &'static str,
        elapsed: std::time::Duration,
        failure: Option<&'static str>,
    ) {
        self.metrics.reconciled(controller, elapsed, failure);
    }
}
