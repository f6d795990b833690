//! A Cluster API Proxmox (CAPMOX, ionos-cloud/cluster-api-provider-proxmox) style reconciler:
//! one step per reconcile, a requeue after each.
//!
//! * Concurrency: `--proxmoxmachine-concurrency`, default 10 (`cmd/main.go`), passed to
//!   controller-runtime as `MaxConcurrentReconciles`: at most 10 reconciles run at once.
//! * Requeue: `DefaultReconcilerRequeue = 10 * time.Second` (`api/v1alpha1`), after every
//!   reconcile that is not done.
//! * The steps (`internal/service/vmservice/vm.go` `ReconcileVM`, `taskservice`): the first
//!   reconcile gets a new id (`GET /cluster/nextid`) and starts the create (CAPMOX clones a
//!   template; the machines here are created, like every other side's), keeping its task; each
//!   later reconcile first reads the task it keeps (`ReconcileInFlightTask`) and stops there
//!   while it runs. When it has ended, the same reconcile reads the VM's config (`FindVM`) and
//!   starts the VM, keeping the start's task; the next one, once that task has ended, reads the
//!   config again and the VM's `status/current` (the power state) and the machine is Ready.
//! * A create refused because another machine took the same id is retried with a fresh id in
//!   the same reconcile (CAPMOX would return the error and be requeued at once).
//!
//! Not modelled: the Kubernetes side (status patches, the ProxmoxCluster's node locations),
//! bootstrap data, IPAM, and the config update and disk resize that CAPMOX sends after a clone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pve_client::api::vmconfig::VmConfig;
use pve_client::{PveClient, Upid};

use super::super::{Measured, Options};

/// CAPMOX's default `--proxmoxmachine-concurrency`.
const MAX_CONCURRENT_RECONCILES: usize = 10;
/// CAPMOX's `DefaultReconcilerRequeue`.
const REQUEUE: Duration = Duration::from_secs(10);

/// Where a machine's reconciles have got to: what its status would hold.
enum Step {
    /// No VM yet.
    Create,
    /// The create's task is running.
    Creating { vmid: u32, upid: Upid },
    /// The start's task is running.
    Starting { vmid: u32, upid: Upid },
    /// Running: Ready.
    Ready,
}

/// Provisions `options.machines` VMs the CAPMOX way on a fresh simulator.
pub async fn run(options: &Options) -> anyhow::Result<Measured> {
    eprintln!("[capmox-style] starting the simulator...");
    let (sim, pve) = super::fresh_sim(options).await?;
    let spec = super::machine_spec()?;
    eprintln!(
        "[capmox-style] reconciling {} machines, {MAX_CONCURRENT_RECONCILES} at once, requeue {} s...",
        options.machines,
        REQUEUE.as_secs()
    );
    let started = Instant::now();
    let workers = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RECONCILES));
    let mut machines = tokio::task::JoinSet::new();
    for index in 0..options.machines {
        let (pve, workers) = (pve.clone(), workers.clone());
        let node = super::node_of(options, index);
        let config = super::create_config(&spec, index)?;
        machines.spawn(async move {
            let mut step = Step::Create;
            loop {
                let worker = workers.acquire().await?;
                step = reconcile(&pve, &node, &config, step).await?;
                drop(worker);
                if matches!(step, Step::Ready) {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(REQUEUE).await;
            }
        });
    }
    while let Some(done) = machines.join_next().await {
        done??;
    }
    let to_all_ready = started.elapsed();
    eprintln!(
        "[capmox-style] all Ready in {:.1} s",
        to_all_ready.as_secs_f64()
    );
    super::measured(&sim, to_all_ready).await
}

/// One reconcile: at most one step forward.
async fn reconcile(
    pve: &PveClient,
    node: &str,
    config: &VmConfig,
    step: Step,
) -> anyhow::Result<Step> {
    Ok(match step {
        Step::Create => {
            let (vmid, upid) = super::create_with_next_id(pve, node, config).await?;
            Step::Creating { vmid, upid }
        }
        Step::Creating { vmid, upid } => {
            if !super::task_done(pve, &upid).await? {
                return Ok(Step::Creating { vmid, upid });
            }
            pve.qemu_config(node, vmid).await?;
            let upid = pve.qemu_start(node, vmid).await?;
            Step::Starting { vmid, upid }
        }
        Step::Starting { vmid, upid } => {
            if !super::task_done(pve, &upid).await? {
                return Ok(Step::Starting { vmid, upid });
            }
            pve.qemu_config(node, vmid).await?;
            super::check_running(pve, node, vmid).await?;
            Step::Ready
        }
        Step::Ready => Step::Ready,
    })
}
