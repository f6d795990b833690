//! A Terraform-provider-style driver, modelled on bpg/terraform-provider-proxmox and
//! Telmate/terraform-provider-proxmox as `terraform apply` runs them:
//!
//! * Terraform's default `-parallelism=10`: at most 10 resources in flight;
//! * per machine (one `proxmox_virtual_environment_vm` / `proxmox_vm_qemu` resource):
//!   `GET /cluster/nextid` (no `vm_id` set), the create, its task polled until it ends, then the
//!   start and its task, then one `status/current` read (the read that follows a create);
//! * a task poll every second, the first one right away: bpg's `tasks.WaitForTask` retries
//!   `GET …/tasks/{upid}/status` with `retry.FixedDelay` of `time.Second`
//!   (`proxmox/nodes/tasks/tasks.go`). Telmate's client, proxmox-api-go, polls every 2 s
//!   (`TaskStatusCheckInterval = 2`), so it would be slower still;
//! * a create refused because another resource took the same id between `nextid` and the
//!   create is retried with a fresh id, as the per-object baseline does.
//!
//! Not modelled: bpg's config read after the create and its agent/IP waits (the VMs here have
//! no agent), and Terraform's own plan and state-file work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pve_client::PveClient;
use pve_client::api::vmconfig::VmConfig;

use super::super::{Measured, Options};

/// `terraform apply -parallelism`'s default.
const PARALLELISM: usize = 10;
/// The providers' task poll interval.
const TASK_POLL: Duration = Duration::from_secs(1);

/// Provisions `options.machines` VMs the Terraform way on a fresh simulator.
pub async fn run(options: &Options) -> anyhow::Result<Measured> {
    eprintln!("[terraform-style] starting the simulator...");
    let (sim, pve) = super::fresh_sim(options).await?;
    let spec = super::machine_spec()?;
    eprintln!(
        "[terraform-style] provisioning {} machines, parallelism {PARALLELISM}...",
        options.machines
    );
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLELISM));
    let mut resources = tokio::task::JoinSet::new();
    for index in 0..options.machines {
        let (pve, limit) = (pve.clone(), limit.clone());
        let node = super::node_of(options, index);
        let config = super::create_config(&spec, index)?;
        resources.spawn(async move {
            let _slot = limit.acquire_owned().await?;
            apply_one(&pve, &node, &config).await
        });
    }
    while let Some(done) = resources.join_next().await {
        done??;
    }
    let to_all_ready = started.elapsed();
    eprintln!(
        "[terraform-style] all running in {:.1} s",
        to_all_ready.as_secs_f64()
    );
    super::measured(&sim, to_all_ready).await
}

/// One resource's create: nextid, create, wait, start, wait, read.
async fn apply_one(pve: &PveClient, node: &str, config: &VmConfig) -> anyhow::Result<()> {
    let (vmid, upid) = super::create_with_next_id(pve, node, config).await?;
    super::wait_task_every(pve, &upid, TASK_POLL).await?;
    let upid = pve.qemu_start(node, vmid).await?;
    super::wait_task_every(pve, &upid, TASK_POLL).await?;
    super::check_running(pve, node, vmid).await
}
