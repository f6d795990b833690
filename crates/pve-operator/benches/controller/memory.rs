//! `--memory N`: the resident memory of the real controller process (`pve-operator run`, its
//! own child process) holding N Ready MachineRequests.
//!
//! The simulator runs in a child process of its own (fast task durations, no capacity model,
//! storage and memory for any N), the control plane is testenv's kube-apiserver and etcd, and
//! this process only applies the requests and watches them become Ready: nothing it allocates
//! is in the figure. Once all N are Ready the controller is left alone for two inventory
//! intervals, then `VmRSS` and `VmHWM` are read from `/proc/<pid>/status`.
//!
//! `PVE_OPERATOR_BENCH_CONTROLLER=<path>` measures another build of `pve-operator` instead (to
//! compare two builds in the same conditions); the controller inherits the environment, so
//! e.g. `MALLOC_ARENA_MAX` reaches it.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use pve_operator_api::{HasConditions, MachineRequest};
use pve_sim::config::{ClusterConfig, NodeConfig, Size, TaskDurations};
use serde_json::{Value, json};

use super::{SimChild, machine_spec};

/// Server-side applies in flight at once.
const APPLIES_AT_ONCE: usize = 32;
/// The controller's `--inventory-interval`, in seconds (its default).
const INVENTORY_SECONDS: u64 = 10;
/// The controller binary to measure instead of this build's (to compare builds side by side).
const CONTROLLER_VAR: &str = "PVE_OPERATOR_BENCH_CONTROLLER";
/// How long all N may take to become Ready.
const READY_WITHIN: Duration = Duration::from_secs(3600);

/// What the mode measured.
pub struct MemoryReport {
    /// Requests applied (and Ready).
    pub machines: usize,
    /// Nodes of the simulated cluster.
    pub nodes: usize,
    /// From the first apply until all were Ready.
    pub to_all_ready: Duration,
    /// The controller's resident set after settling (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// The most it was resident at any time (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

impl MemoryReport {
    /// The mode's one-line JSON summary.
    pub fn summary(&self) -> Value {
        let mib = |bytes: u64| (bytes as f64 / f64::from(1 << 20) * 10.0).round() / 10.0;
        json!({
            "machines": self.machines,
            "nodes": self.nodes,
            "ready_s": (self.to_all_ready.as_secs_f64() * 10.0).round() / 10.0,
            "rss_mib": mib(self.rss_bytes),
            "peak_rss_mib": mib(self.peak_rss_bytes),
        })
    }
}

/// Tasks that take next to no time: the mode measures what the controller holds, not how fast
/// Proxmox works.
fn fast_durations() -> TaskDurations {
    TaskDurations {
        create: 50,
        start: 50,
        stop: 50,
        shutdown: 50,
        reboot: 50,
        reset: 50,
        destroy: 50,
        clone: 50,
        config: 20,
        resize: 20,
        other: 20,
    }
}

/// `nodes` nodes with room (memory, `local-lvm` space) for `machines` of `machine_spec`'s VMs.
fn cluster_config(nodes: usize, machines: usize) -> ClusterConfig {
    let mut config = ClusterConfig {
        task_durations_ms: fast_durations(),
        ..ClusterConfig::default()
    };
    let per_node = machines.div_ceil(nodes) as u64 + 1;
    config.nodes = (1..=nodes)
        .map(|i| NodeConfig {
            name: format!("pve{i}"),
            cpus: 128,
            // 512 MiB per machine, twice over.
            memory: Size((per_node << 30).max(2 << 40)),
            bridges: vec!["vmbr0".into()],
            online: true,
        })
        .collect();
    for storage in &mut config.storages {
        if storage.id == "local-lvm" {
            // 8 GiB per machine, twice over.
            storage.capacity = Size((per_node << 34).max(2 << 40));
        }
    }
    config.templates.clear();
    config
}

/// `pve-operator run` in its own process; killed on drop.
struct ControllerProcess(Child);

impl ControllerProcess {
    fn start(kubeconfig: &Path, config: &Path, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log)
            .with_context(|| format!("creating the controller's log {}", log.display()))?;
        let binary = std::env::var_os(CONTROLLER_VAR)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_pve-operator").into());
        let child = Command::new(binary)
            .arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--config")
            .arg(config)
            .args(["--namespace", "default"])
            .args(["--inventory-interval", &INVENTORY_SECONDS.to_string()])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--log-level", "warn"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting pve-operator run")?;
        Ok(Self(child))
    }

    /// `VmRSS` and `VmHWM` of the process, in bytes.
    fn resident(&mut self) -> anyhow::Result<(u64, u64)> {
        if let Some(status) = self.0.try_wait()? {
            bail!("the controller exited ({status}); see its log");
        }
        let path = format!("/proc/{}/status", self.0.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let kib: u64 = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in {path}"))?;
            Ok(kib << 10)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the mode: N requests applied, all Ready, settled, measured.
pub async fn run(machines: usize, nodes: usize) -> anyhow::Result<MemoryReport> {
    eprintln!("[memory] starting kube-apiserver, etcd and the simulator ({nodes} nodes)...");
    let sim = SimChild::start_with(&cluster_config(nodes, machines))?;
    let env = testenv::TestEnv::start().await?;
    let kube = env.client()?;
    pve_operator::cli::demo::install_crds(&kube).await?;
    let config_path = env.dir().join("proxmox.yaml");
    std::fs::write(&config_path, sim.config_yaml())?;
    let log_path = env.dir().join("controller.log");
    let mut controller = ControllerProcess::start(env.kubeconfig_path(), &config_path, &log_path)?;
    let requests: Api<MachineRequest> = Api::namespaced(kube.clone(), "default");

    // Counts Ready requests from a watch (a list of N every few seconds would cost more).
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(0usize);
    let watch = tokio::spawn({
        let requests = requests.clone();
        async move {
            let mut ready = HashSet::new();
            let mut events = watcher(requests, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(request) = events.try_next().await? {
                let name = request.metadata.name.clone().unwrap_or_default();
                if request.status.as_ref().is_some_and(|s| s.is_ready()) {
                    ready.insert(name);
                } else {
                    ready.remove(&name);
                }
                ready_tx.send_replace(ready.len());
            }
            anyhow::Ok(())
        }
    });

    eprintln!("[memory] applying {machines} MachineRequests, {APPLIES_AT_ONCE} at once...");
    let started = Instant::now();
    let apply = PatchParams::apply("controller-bench").force();
    futures::stream::iter(0..machines)
        .map(|i| {
            let (requests, apply) = (&requests, &apply);
            async move {
                let name = format!("bench-{i:05}");
                let doc = json!({
                    "apiVersion": "pve-operator.dev/v1alpha1", "kind": "MachineRequest",
                    "metadata": { "name": name },
                    "spec": machine_spec(),
                });
                requests.patch(&name, apply, &Patch::Apply(&doc)).await
            }
        })
        .buffer_unordered(APPLIES_AT_ONCE)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    eprintln!(
        "[memory] applied in {:.1} s; waiting for all to be Ready...",
        started.elapsed().as_secs_f64()
    );
    let mut reported = Instant::now();
    loop {
        let ready = *ready_rx.borrow_and_update();
        if ready == machines {
            break;
        }
        if started.elapsed() > READY_WITHIN {
            bail!("only {ready} of {machines} Ready after {READY_WITHIN:?}");
        }
        if reported.elapsed() > Duration::from_secs(30) {
            let (rss, _) = controller.resident()?;
            eprintln!(
                "[memory] {ready} of {machines} Ready after {:.0} s; controller RSS {} MiB",
                started.elapsed().as_secs_f64(),
                rss >> 20
            );
            reported = Instant::now();
        }
        tokio::select! {
            changed = ready_rx.changed() => changed.context("the Ready watch ended")?,
            _ = tokio::time::sleep(Duration::from_secs(5)) => controller.resident().map(drop)?,
        }
    }
    let to_all_ready = started.elapsed();
    watch.abort();
    eprintln!(
        "[memory] all {machines} Ready in {:.1} s; settling for two inventory intervals...",
        to_all_ready.as_secs_f64()
    );
    // The last status writes land and two inventory reads pass: what stays is what a
    // controller holding N Ready requests holds.
    tokio::time::sleep(Duration::from_secs(2 * INVENTORY_SECONDS)).await;
    let (rss_bytes, peak_rss_bytes) = controller.resident()?;
    drop(controller);
    drop(env);
    drop(sim);
    Ok(MemoryReport {
        machines,
        nodes,
        to_all_ready,
        rss_bytes,
        peak_rss_bytes,
    })
}
