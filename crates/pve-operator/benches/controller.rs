//! The controller at scale, side by side with its baselines, in one run.
//!
//! `cargo bench -p pve-operator --bench controller -- [--machines N] [--nodes K] [--idle-seconds S]
//! [--capacity] [--json] [--baselines per_object,terraform_style,capmox_style,ansible]
//! [--ansible-machines M]`
//!
//! `--capacity` turns pve-sim's capacity model on (`CapacityModel::pve_default`: API worker pools,
//! locks, modelled task durations; see docs/pve-sim-capacity.md); `--json` ends the output with
//! one JSON object (with the floor of the workload under the model when it is on).
//!
//! `--memory N [--nodes K]` instead measures the resident memory of the real controller process
//! holding N Ready requests, and prints `{"machines":N,...,"rss_mib":..,"peak_rss_mib":..}`
//! (benches/controller/memory.rs).
//!
//! Both sides provision the same N VMs (the same create parameters, built by `vmspec`) on a
//! fresh Proxmox VE simulator with realistic task durations, each in its own process so that
//! the heap measured here is the controller's:
//!
//! * **pve-operator**: the real controller (`InProcessController`, default settings: 10 s inventory,
//!   500 ms task polls, 16 concurrent reconciles, 8 tasks per node) against a real kube-apiserver
//!   (testenv), driven by N MachineRequests.
//! * **baseline**: what a reconciler that reads each object by itself does (the
//!   controller-runtime style): per machine, `nextid`, create, its own task polled every 500 ms,
//!   start, its task polled, a status read; then, to notice drift, a status and a config read per
//!   machine every 10 s (the same interval as the controller's inventory). Same concurrency (16),
//!   no per-node bound.
//! * the Terraform-style, CAPMOX-style and Ansible baselines of `controller/baselines/`, each on
//!   its own simulator too; `--baselines` picks which baselines run (default all), and
//!   `--ansible-machines` how many machines Ansible provisions (default min(N, 50)).
//!
//! It prints a Markdown table (docs/controller-benchmark.md holds the latest one).

use std::alloc::System;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Api;
use kube::api::{Patch, PatchParams};
use pve_client::{PveClient, PveConfig, PveError, Upid};
use pve_operator::cli::run::{InProcessController, RunArgs};
use pve_operator::vmspec::{self, MachineRequestSpec, Marker};
use pve_operator_api::{HasConditions, MachineRequest};
use pve_sim::config::{ClusterConfig, NodeConfig, Size, TaskDurations};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[path = "controller/baselines/mod.rs"]
mod baselines;
#[path = "controller/memory.rs"]
mod memory;
#[path = "controller/report.rs"]
mod report;
#[path = "controller/summary.rs"]
mod summary;

/// Counts heap bytes, to tell what the controller keeps per object.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed so far.
fn live_heap_bytes() -> i64 {
    let stats = Region::new(ALLOCATOR).initial();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

/// The environment variable that makes this binary a simulator child process.
const SIM_CHILD: &str = "PVE_OPERATOR_BENCH_SIM_CONFIG";
const PASSWORD: &str = "bench-root-password";
const TASK_POLL: Duration = Duration::from_millis(500);
const RESYNC: Duration = Duration::from_secs(10);
const CONCURRENCY: usize = 16;

struct Options {
    machines: usize,
    nodes: usize,
    idle: Duration,
    /// pve-sim's capacity model on.
    capacity: bool,
    /// A JSON summary as the last line.
    json: bool,
    /// The baselines to run.
    baselines: baselines::Selection,
    /// Ansible's machines, when not the default.
    ansible_machines: Option<usize>,
    /// `--memory N`: only the controller process's resident memory with N Ready requests.
    memory: Option<usize>,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        machines: 200,
        nodes: 3,
        idle: Duration::from_secs(60),
        capacity: false,
        json: false,
        baselines: baselines::Selection::default(),
        ansible_machines: None,
        memory: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<u64> {
            args.next()
                .with_context(|| format!("{arg} needs a value"))?
                .parse()
                .with_context(|| format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--machines" => options.machines = value()? as usize,
            "--nodes" => options.nodes = value()? as usize,
            "--idle-seconds" => options.idle = Duration::from_secs(value()?),
            "--capacity" => options.capacity = true,
            "--json" => options.json = true,
            "--memory" => options.memory = Some(value()? as usize),
            "--baselines" => {
                let list = args.next().context("--baselines needs a list")?;
                options.baselines = baselines::Selection::parse(&list)?;
            }
            "--ansible-machines" => options.ansible_machines = Some(value()? as usize),
            // What cargo bench passes to every bench binary.
            "--bench" => {}
            other => bail!(
                "unknown argument {other}; use --machines, --nodes, --idle-seconds, --capacity, --json, --baselines, --ansible-machines, --memory"
            ),
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    if let Ok(path) = std::env::var(SIM_CHILD) {
        return run_sim_child(&path);
    }
    let options = parse_options()?;
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(machines) = options.memory {
        let report = runtime.block_on(memory::run(machines, options.nodes))?;
        println!("{}", report.summary());
        return Ok(());
    }
    runtime.block_on(async {
        eprintln!(
            "{} machines on {} nodes; realistic task durations; idle window {} s",
            options.machines,
            options.nodes,
            options.idle.as_secs()
        );
        let ours = bench_controller(&options).await?;
        let baselines = baselines::run_selected(&options).await?;
        report::print_report(&options, &ours, &baselines);
        if options.json {
            println!("{}", summary::summary(&options, &ours, &baselines));
        }
        Ok(())
    })
}

/// What one side measured.
#[derive(Default)]
struct Measured {
    to_all_ready: Duration,
    provisioning_calls: u64,
    by_endpoint: BTreeMap<String, u64>,
    peak_tasks_per_node: u64,
    idle_calls_per_minute: f64,
    heap_per_machine: Option<f64>,
    /// CPU seconds of this process (the controller and the requests' applies) to provision.
    cpu_seconds: Option<f64>,
}

// --- the simulator, in a child process ------------------------------------------------------

/// Proxmox VE tasks as long as they take on a small real cluster with thin-provisioned storage.
fn realistic_durations() -> TaskDurations {
    TaskDurations {
        create: 2_000,
        start: 1_500,
        stop: 1_000,
        shutdown: 3_000,
        reboot: 3_000,
        reset: 500,
        destroy: 1_500,
        clone: 8_000,
        config: 300,
        resize: 500,
        other: 500,
    }
}

fn cluster_config(nodes: usize, capacity: bool) -> ClusterConfig {
    let mut config = ClusterConfig {
        task_durations_ms: realistic_durations(),
        capacity: capacity.then(pve_sim::capacity::model::CapacityModel::pve_default),
        ..ClusterConfig::default()
    };
    config.nodes = (1..=nodes)
        .map(|i| NodeConfig {
            name: format!("pve{i}"),
            cpus: 128,
            memory: Size(2 << 40),
            bridges: vec!["vmbr0".into()],
            online: true,
        })
        .collect();
    // The default templates live on the default node, `pve`; the machines here boot from the
    // network and need none.
    config.templates.clear();
    config
}

fn run_sim_child(config_path: &str) -> anyhow::Result<()> {
    let config: ClusterConfig = serde_yaml::from_str(&std::fs::read_to_string(config_path)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = pve_sim::SimOptions::new(PASSWORD);
        options.config = config;
        let sim = pve_sim::SimServer::start(options).await?;
        let info = json!({ "url": sim.url(), "base_url": sim.base_url(), "fingerprint": sim.fingerprint(), "ca_pem": sim.ca_pem() });
        println!("{info}");
        std::io::stdout().flush()?;
        // Runs until the parent closes stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await?;
        sim.shutdown().await;
        anyhow::Ok(())
    })
}

/// A simulator in its own process; killed on drop.
struct SimChild {
    child: Child,
    url: String,
    base_url: String,
    fingerprint: String,
    http: reqwest::Client,
    _config: tempfile::NamedTempFile,
}

impl SimChild {
    fn start(nodes: usize, capacity: bool) -> anyhow::Result<SimChild> {
        Self::start_with(&cluster_config(nodes, capacity))
    }

    fn start_with(cluster: &ClusterConfig) -> anyhow::Result<SimChild> {
        let mut config = tempfile::NamedTempFile::new()?;
        config.write_all(serde_yaml::to_string(cluster)?.as_bytes())?;
        let mut child = Command::new(std::env::current_exe()?)
            .env(SIM_CHILD, config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let info: Value = serde_json::from_str(&line).context("the simulator child's info line")?;
        let text = |key: &str| info[key].as_str().unwrap_or_default().to_owned();
        let ca = reqwest::Certificate::from_pem(text("ca_pem").as_bytes())?;
        Ok(SimChild {
            child,
            url: text("url"),
            base_url: text("base_url"),
            fingerprint: text("fingerprint"),
            http: reqwest::Client::builder()
                .add_root_certificate(ca)
                .build()?,
            _config: config,
        })
    }

    fn config_yaml(&self) -> String {
        format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root\n  realm: pam\n  password: \"{PASSWORD}\"\n",
            self.url, self.fingerprint
        )
    }

    async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_sim/stats", self.base_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn reset_stats(&self) -> anyhow::Result<()> {
        self.http
            .delete(format!("{}/_sim/stats", self.base_url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn calls(stats: &Value) -> (u64, BTreeMap<String, u64>, u64) {
    let total = stats["requests_total"].as_u64().unwrap_or(0);
    let by_endpoint = stats["requests_by_endpoint"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let peak = stats["max_tasks_in_flight_by_node"]
        .as_object()
        .and_then(|m| m.values().filter_map(Value::as_u64).max())
        .unwrap_or(0);
    (total, by_endpoint, peak)
}

// --- the machine spec --------------------------------------------------------------------------

fn machine_spec() -> Value {
    json!({
        "cpu": { "cores": 1 },
        "memory": { "sizeMiB": 512 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 8 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "network": {} },
    })
}

// --- pve-operator --------------------------------------------------------------------------------

async fn bench_controller(options: &Options) -> anyhow::Result<Measured> {
    eprintln!("[pve-operator] starting kube-apiserver, etcd and the simulator...");
    let sim = SimChild::start(options.nodes, options.capacity)?;
    let env = testenv::TestEnv::start().await?;
    let kube = env.client()?;
    pve_operator::cli::demo::install_crds(&kube).await?;
    let config_path = env.dir().join("proxmox.yaml");
    std::fs::write(&config_path, sim.config_yaml())?;

    let args = RunArgs {
        config: Some(config_path),
        namespace: Some("default".into()),
        concurrency: CONCURRENCY as u16,
        inventory_interval: RESYNC.as_secs(),
        task_poll_interval: TASK_POLL.as_millis() as u64,
        shutdown_grace: 5,
        ..RunArgs::default()
    };
    let controller = InProcessController::start(args, kube.clone());
    let requests: Api<MachineRequest> = Api::namespaced(kube.clone(), "default");
    // The caches fill and the first (empty) inventory is read before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.reset_stats().await?;
    let heap_before = live_heap_bytes();

    eprintln!(
        "[pve-operator] applying {} MachineRequests...",
        options.machines
    );
    let started = Instant::now();
    let cpu_before = summary::process_cpu_seconds();
    let apply = PatchParams::apply("controller-bench").force();
    for i in 0..options.machines {
        let name = format!("bench-{i:05}");
        let doc = json!({
            "apiVersion": "pve-operator.dev/v1alpha1", "kind": "MachineRequest",
            "metadata": { "name": name },
            "spec": machine_spec(),
        });
        requests.patch(&name, &apply, &Patch::Apply(&doc)).await?;
    }
    loop {
        let list = requests.list(&Default::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.is_ready()))
            .count();
        drop(list);
        if ready == options.machines {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!(
                "only {ready} of {} Ready after 30 minutes",
                options.machines
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let to_all_ready = started.elapsed();
    let cpu_seconds = summary::process_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let (provisioning_calls, by_endpoint, peak) = calls(&sim.stats().await?);
    eprintln!(
        "[pve-operator] all Ready in {:.1} s",
        to_all_ready.as_secs_f64()
    );

    // Settle (the last status writes and the next inventory read), then measure what stays.
    tokio::time::sleep(RESYNC).await;
    let heap_after = live_heap_bytes();
    eprintln!("[pve-operator] idle for {} s...", options.idle.as_secs());
    sim.reset_stats().await?;
    tokio::time::sleep(options.idle).await;
    let (idle_calls, _, _) = calls(&sim.stats().await?);

    controller.stop().await?;
    drop(env);
    Ok(Measured {
        to_all_ready,
        provisioning_calls,
        by_endpoint,
        peak_tasks_per_node: peak,
        idle_calls_per_minute: idle_calls as f64 * 60.0 / options.idle.as_secs_f64(),
        heap_per_machine: Some((heap_after - heap_before) as f64 / options.machines as f64),
        cpu_seconds,
    })
}

// --- the per-object-polling baseline ------------------------------------------------------------

async fn wait_task(pve: &PveClient, upid: &Upid) -> anyhow::Result<()> {
    loop {
        let status = pve.task_status(upid).await?;
        if status.status != "running" {
            return match status.exitstatus.as_deref() {
                Some("OK") => Ok(()),
                other => bail!("task {upid} ended with {other:?}"),
            };
        }
        tokio::time::sleep(TASK_POLL).await;
    }
}

/// One machine, the way a per-object reconciler provisions it.
async fn provision_one(
    pve: &PveClient,
    spec: &MachineRequestSpec,
    index: usize,
    node: &str,
) -> anyhow::Result<u32> {
    let name = format!("bench-{index:05}");
    let marker = Marker::new(format!("baseline-{index:05}"), "default", &name);
    let config = vmspec::Desired::new(spec, &marker, &name)?.create_config()?;
    let (vmid, upid) = loop {
        let vmid = pve.next_vmid().await?;
        match pve.qemu_create(node, vmid, &config, false).await {
            Ok(upid) => break (vmid, upid),
            // Another machine took the same id between nextid and create: ask again.
            Err(PveError::AlreadyExists { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    };
    wait_task(pve, &upid).await?;
    let upid = pve.qemu_start(node, vmid).await?;
    wait_task(pve, &upid).await?;
    let status = pve.qemu_status(node, vmid).await?;
    if status.status != "running" {
        bail!("VM {vmid} is {} after its start", status.status);
    }
    Ok(vmid)
}

async fn bench_baseline(options: &Options) -> anyhow::Result<Measured> {
    eprintln!("[baseline] starting the simulator...");
    let sim = SimChild::start(options.nodes, options.capacity)?;
    let pve = PveClient::new(&PveConfig::from_yaml_str(&sim.config_yaml())?)?;
    let spec: Arc<MachineRequestSpec> = Arc::new(serde_json::from_value(machine_spec())?);
    pve.version().await?;
    sim.reset_stats().await?;

    eprintln!("[baseline] provisioning {} machines...", options.machines);
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..options.machines {
        let (pve, spec, limit) = (pve.clone(), spec.clone(), limit.clone());
        let node = format!("pve{}", index % options.nodes + 1);
        workers.spawn(async move {
            let _slot = limit.acquire_owned().await?;
            let vmid = provision_one(&pve, &spec, index, &node).await?;
            anyhow::Ok((node, vmid))
        });
    }
    let mut machines = Vec::new();
    while let Some(done) = workers.join_next().await {
        machines.push(done??);
    }
    let to_all_ready = started.elapsed();
    let (provisioning_calls, by_endpoint, peak) = calls(&sim.stats().await?);
    eprintln!(
        "[baseline] all running in {:.1} s",
        to_all_ready.as_secs_f64()
    );

    eprintln!("[baseline] idle for {} s...", options.idle.as_secs());
    sim.reset_stats().await?;
    let machines = Arc::new(machines);
    let idle_end = Instant::now() + options.idle;
    while Instant::now() < idle_end {
        let round = Instant::now();
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut checks = tokio::task::JoinSet::new();
        for (node, vmid) in machines.iter().cloned() {
            let (pve, limit) = (pve.clone(), limit.clone());
            checks.spawn(async move {
                let _slot = limit.acquire_owned().await?;
                // Drift: is it still running, and is its config still the spec's?
                pve.qemu_status(&node, vmid).await?;
                pve.qemu_config(&node, vmid).await?;
                anyhow::Ok(())
            });
        }
        while let Some(done) = checks.join_next().await {
            done??;
        }
        let rest = RESYNC.saturating_sub(round.elapsed());
        tokio::time::sleep(rest.min(idle_end.saturating_duration_since(Instant::now()))).await;
    }
    let (idle_calls, _, _) = calls(&sim.stats().await?);
    Ok(Measured {
        to_all_ready,
        provisioning_calls,
        by_endpoint,
        peak_tasks_per_node: peak,
        idle_calls_per_minute: idle_calls as f64 * 60.0 / options.idle.as_secs_f64(),
        heap_per_machine: None,
        cpu_seconds: None,
    })
}
