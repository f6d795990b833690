//! The baselines the controller is measured against, each on its own fresh simulator with the
//! same cluster config and capacity model, provisioning the same VMs (`machine_spec`):
//!
//! * `per_object`: the per-object reconciler written in `controller.rs` (`bench_baseline`);
//! * `terraform_style`: a Terraform-provider-like driver ([`terraform`]);
//! * `capmox_style`: a Cluster API Proxmox-like reconciler ([`capmox`]);
//! * `ansible`: a real Ansible playbook with `community.general.proxmox_kvm` ([`ansible`]).

mod ansible;
mod capmox;
mod terraform;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use pve_client::api::vmconfig::VmConfig;
use pve_client::{PveClient, PveConfig, PveError, Upid};
use pve_operator::vmspec::{self, MachineRequestSpec, Marker};

use super::{Measured, Options, SimChild};

/// The baselines, by the names the JSON summary and `--baselines` use.
pub const NAMES: [&str; 4] = ["per_object", "terraform_style", "capmox_style", "ansible"];

/// Which baselines to run (`--baselines a,b,...`; default all).
#[derive(Clone, Debug)]
pub struct Selection(Vec<&'static str>);

impl Default for Selection {
    fn default() -> Self {
        Selection(NAMES.to_vec())
    }
}

impl Selection {
    /// Parses a comma-separated list of [`NAMES`].
    pub fn parse(list: &str) -> anyhow::Result<Selection> {
        let mut chosen = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(known) = NAMES.iter().find(|known| **known == name) else {
                bail!(
                    "--baselines: unknown baseline {name:?}; choose from {}",
                    NAMES.join(",")
                );
            };
            chosen.push(*known);
        }
        Ok(Selection(chosen))
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
}

/// One baseline's run.
pub struct Run {
    /// Its name in [`NAMES`].
    pub name: &'static str,
    /// The machines it provisioned (Ansible may run at fewer than `--machines`).
    pub machines: usize,
    /// What it measured; `idle_calls_per_minute` only when `idle_measured`.
    pub measured: Measured,
    /// Whether it also measured an idle window.
    pub idle_measured: bool,
}

impl Run {
    /// Proxmox calls to provision, per machine.
    pub fn calls_per_machine(&self) -> f64 {
        self.measured.provisioning_calls as f64 / self.machines.max(1) as f64
    }
}

/// The machines Ansible provisions: `--ansible-machines`, or at most 50.
pub fn ansible_machines(options: &Options) -> usize {
    options.ansible_machines.unwrap_or(options.machines.min(50))
}

/// Runs the selected baselines one after the other. A baseline that cannot run here (Ansible
/// without `$PVE_OPERATOR_PYENV`) is left out with a line on stderr.
pub async fn run_selected(options: &Options) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let selection = &options.baselines;
    if selection.has("per_object") {
        runs.push(Run {
            name: "per_object",
            machines: options.machines,
            measured: super::bench_baseline(options).await?,
            idle_measured: true,
        });
    }
    if selection.has("terraform_style") {
        runs.push(Run {
            name: "terraform_style",
            machines: options.machines,
            measured: terraform::run(options).await?,
            idle_measured: false,
        });
    }
    if selection.has("capmox_style") {
        runs.push(Run {
            name: "capmox_style",
            machines: options.machines,
            measured: capmox::run(options).await?,
            idle_measured: false,
        });
    }
    if selection.has("ansible") {
        let machines = ansible_machines(options);
        if let Some(measured) = ansible::run(options, machines).await? {
            runs.push(Run {
                name: "ansible",
                machines,
                measured,
                idle_measured: false,
            });
        }
    }
    Ok(runs)
}

/// A fresh simulator of the benchmark's cluster and a client logged in to it, with the login
/// left out of the call counts.
async fn fresh_sim(options: &Options) -> anyhow::Result<(SimChild, PveClient)> {
    let sim = SimChild::start(options.nodes, options.capacity)?;
    let pve = PveClient::new(&PveConfig::from_yaml_str(&sim.config_yaml())?)?;
    pve.version().await?;
    sim.reset_stats().await?;
    Ok((sim, pve))
}

/// The node machine `index` goes to: round robin, as a user spreading resources by hand would.
fn node_of(options: &Options, index: usize) -> String {
    format!("pve{}", index % options.nodes + 1)
}

/// The create parameters of machine `index`, the same as every other side sends.
fn create_config(spec: &MachineRequestSpec, index: usize) -> anyhow::Result<VmConfig> {
    let name = format!("bench-{index:05}");
    let marker = Marker::new(format!("baseline-{index:05}"), "default", &name);
    Ok(vmspec::Desired::new(spec, &marker, &name)?.create_config()?)
}

/// The benchmark's machine spec, parsed once.
fn machine_spec() -> anyhow::Result<Arc<MachineRequestSpec>> {
    Ok(Arc::new(serde_json::from_value(super::machine_spec())?))
}

/// `GET /cluster/nextid`, then the create; when another machine took the same id in between
/// (`AlreadyExists`), asks again.
async fn create_with_next_id(
    pve: &PveClient,
    node: &str,
    config: &VmConfig,
) -> anyhow::Result<(u32, Upid)> {
    loop {
        let vmid = pve.next_vmid().await?;
        match pve.qemu_create(node, vmid, config, false).await {
            Ok(upid) => return Ok((vmid, upid)),
            Err(PveError::AlreadyExists { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// Whether the task has ended (`Ok(true)`), is running (`Ok(false)`), or failed.
async fn task_done(pve: &PveClient, upid: &Upid) -> anyhow::Result<bool> {
    let status = pve.task_status(upid).await?;
    if status.status == "running" {
        return Ok(false);
    }
    match status.exitstatus.as_deref() {
        Some("OK") => Ok(true),
        other => bail!("task {upid} ended with {other:?}"),
    }
}

/// Polls the task every `interval` until it ends, the first poll right away.
async fn wait_task_every(pve: &PveClient, upid: &Upid, interval: Duration) -> anyhow::Result<()> {
    while !task_done(pve, upid).await? {
        tokio::time::sleep(interval).await;
    }
    Ok(())
}

/// Fails unless the VM runs.
async fn check_running(pve: &PveClient, node: &str, vmid: u32) -> anyhow::Result<()> {
    let status = pve
        .qemu_status(node, vmid)
        .await
        .with_context(|| format!("the status of VM {vmid}"))?;
    if status.status != "running" {
        bail!("VM {vmid} is {} after its start", status.status);
    }
    Ok(())
}

/// What the simulator counted since the last reset, with the makespan.
async fn measured(sim: &SimChild, to_all_ready: Duration) -> anyhow::Result<Measured> {
    let (provisioning_calls, by_endpoint, peak) = super::calls(&sim.stats().await?);
    Ok(Measured {
        to_all_ready,
        provisioning_calls,
        by_endpoint,
        peak_tasks_per_node: peak,
        ..Measured::default()
    })
}
