//! One kill run: a control-plane namespace, a simulator whose windows are widened by latency
//! faults, and the controller (a task of the test process, or the `pve-operator` binary) that is
//! killed inside the drawn window, restarted, and audited once the request settled.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{InProcessController, RunArgs};
use pve_operator::vmspec::Marker;
use pve_operator_api::MachineRequest;
use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};
use pve_sim::state::{Power, SimState};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

use super::findings::{
    MarkerParts, describe_request, made_by, made_vms, marker_parts, vm_matches_spec,
};
use super::plan::Opens;
use super::{
    ANSWER_MS, CLONE_MS, CONFIG_MS, CREATE_MS, DESTROY_MS, HOLD_MS, IDENTITY_LABEL, LOG_LEVEL_VAR,
    LOGS_VAR, Outcome, Plan, RECOVERY_DEADLINE, REQUEST, RESIZE_MS, ROOT_PASSWORD, SHUTDOWN_MS,
    START_MS, STATUS_READ_MS, STOP_MS, Scenario, WINDOW_DEADLINE,
};

/// How the controller dies.
#[derive(Debug, Clone)]
pub enum KillMode {
    /// The controller runs as a task of the test process and is aborted.
    Abort,
    /// The controller is the `pve-operator` binary at this path, and gets SIGKILL.
    SigKill(PathBuf),
}

impl KillMode {
    /// The environment variable that makes the CI runs SIGKILL a binary.
    pub const BINARY_VAR: &'static str = "PVE_OPERATOR_KILL_BINARY";

    /// `SigKill` of `PVE_OPERATOR_KILL_BINARY` when it is set, else `Abort`.
    pub fn from_env() -> KillMode {
        match std::env::var_os(Self::BINARY_VAR) {
            Some(path) if !path.is_empty() => KillMode::SigKill(PathBuf::from(path)),
            _ => KillMode::Abort,
        }
    }

    /// Its name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            KillMode::Abort => "abort",
            KillMode::SigKill(_) => "sigkill",
        }
    }
}

/// Runs `scenario` with the kill drawn from `seed`, and reports what it found. Panics only on
/// a broken test environment (no control plane, no simulator).
pub async fn kill_run(scenario: Scenario, seed: u64, mode: &KillMode) -> Outcome {
    let plan = Plan::draw(scenario, seed);
    let began = Instant::now();
    let mut rig = Rig::start(scenario, mode).await;
    let mut outcome = Outcome {
        plan,
        mode: mode.name(),
        at_kill: String::new(),
        duplicates: Vec::new(),
        orphans: Vec::new(),
        finalizer_released: false,
        ready: None,
        problems: Vec::new(),
        elapsed: Duration::ZERO,
    };
    if let Err(problem) = rig.drive(&plan, &mut outcome).await {
        outcome.problems.push(problem);
        // What a deletion leaves, even after a run that went wrong before it.
        let _ = rig.delete().await;
        outcome.finalizer_released = rig.wait_gone().await.is_ok();
    }
    rig.audit(&mut outcome).await;
    rig.stop().await;
    outcome.elapsed = began.elapsed();
    outcome
}

/// The controller while it runs.
enum Running {
    Task(InProcessController),
    Process(ChildProcess),
}

/// A child process that is killed (SIGKILL) when dropped, so that a failing run leaves none.
struct ChildProcess(std::process::Child);

impl ChildProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A control-plane namespace, a simulator and the controller of one run.
struct Rig {
    scenario: Scenario,
    client: Client,
    kubeconfig: PathBuf,
    namespace: String,
    sim: RunningSim,
    pve: PveClient,
    config_path: PathBuf,
    mode: KillMode,
    controller: Option<Running>,
    /// How often the controller was started (names its log files).
    starts: u32,
    /// The VMs the simulator starts with (the template).
    initial_vms: BTreeSet<u32>,
    /// The request's marker, once the API server gave it a uid.
    marker: Option<Marker>,
    /// The task list's length when the change was made: tasks after it are the run's.
    tasks_at_change: usize,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start(scenario: Scenario, mode: &KillMode) -> Rig {
        let env = testenv::TestEnv::shared().await.expect("control plane");
        let client = env.client().expect("client");
        pve_operator::cli::demo::install_crds(&client)
            .await
            .expect("CRDs install");
        let namespace = env
            .create_namespace(&client, &format!("kill-{scenario}"))
            .await
            .expect("namespace");
        let mut options = SimOptions::new(ROOT_PASSWORD);
        let durations = &mut options.config.task_durations_ms;
        durations.create = CREATE_MS;
        durations.clone = CLONE_MS;
        durations.start = START_MS;
        durations.stop = STOP_MS;
        durations.shutdown = SHUTDOWN_MS;
        durations.destroy = DESTROY_MS;
        durations.config = CONFIG_MS;
        durations.resize = RESIZE_MS;
        let sim = SimServer::start(options).await.expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = sim.root_config_yaml();
        let config_path = dir.path().join("proxmox.yaml");
        std::fs::write(&config_path, &config).expect("config written");
        let pve = PveClient::new(&PveConfig::from_yaml_str(&config).expect("config parses"))
            .expect("pve client");
        let initial_vms = sim.with_state(|s| s.vms.keys().copied().collect());
        Rig {
            scenario,
            client,
            kubeconfig: env.kubeconfig_path().to_path_buf(),
            namespace,
            sim,
            pve,
            config_path,
            mode: mode.clone(),
            controller: None,
            starts: 0,
            initial_vms,
            marker: None,
            tasks_at_change: 0,
            dir,
        }
    }

    fn requests(&self) -> Api<MachineRequest> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The run itself; `Err` is a problem that ends it early.
    async fn drive(&mut self, plan: &Plan, outcome: &mut Outcome) -> Result<(), String> {
        self.start_controller()?;
        if matches!(self.scenario, Scenario::Drift | Scenario::Delete) {
            // A Ready VM to change or delete, made without kills.
            self.apply(self.scenario.spec()).await?;
            self.wait_ready().await?;
        }
        self.sim.set_faults(widening_faults(plan.seed));
        if self.scenario == Scenario::DeleteWhileCreating {
            // A VM being created to delete.
            self.apply(self.scenario.spec()).await?;
            self.window_opens(Opens::TaskStarted("qmcreate"), Instant::now())
                .await?;
        }
        self.tasks_at_change = self.sim.with_state(|s| s.tasks.len());
        let changed_at = Instant::now();
        match self.scenario {
            Scenario::Create | Scenario::Clone => self.apply(self.scenario.spec()).await?,
            Scenario::Drift => self.apply(Scenario::drifted_spec()).await?,
            Scenario::Delete | Scenario::DeleteWhileCreating => self.delete().await?,
        }
        let opened = self.window_opens(plan.window.opens, changed_at).await?;
        tokio::time::sleep_until((opened + Duration::from_millis(plan.delay_ms)).into()).await;
        self.kill().await;
        outcome.at_kill = self.describe().await;
        tokio::time::sleep(Duration::from_millis(plan.downtime_ms)).await;
        self.start_controller()?;
        if !matches!(
            self.scenario,
            Scenario::Delete | Scenario::DeleteWhileCreating
        ) {
            let ready = self.wait_ready().await;
            outcome.ready = Some(ready.is_ok());
            let request = ready?;
            let state = self.settled_state().await;
            outcome.duplicates.extend(self.marked_at_once(&state));
            outcome.problems.extend(vm_matches_spec(&state, &request));
            self.delete().await?;
        }
        self.wait_gone().await?;
        outcome.finalizer_released = true;
        Ok(())
    }

    fn start_controller(&mut self) -> Result<(), String> {
        self.starts += 1;
        let ns = self.namespace.clone();
        let selector = format!("{IDENTITY_LABEL}={ns}");
        self.controller = Some(match &self.mode {
            KillMode::Abort => {
                let args = RunArgs {
                    config: Some(self.config_path.clone()),
                    namespace: Some(ns.clone()),
                    default_allowed_namespaces: vec![ns.clone()],
                    identity_namespace: Some(ns),
                    identity_selector: vec![selector],
                    inventory_interval: 1,
                    task_poll_interval: 100,
                    resync_interval: 0,
                    shutdown_grace: 5,
                    ..RunArgs::default()
                };
                Running::Task(InProcessController::start(args, self.client.clone()))
            }
            KillMode::SigKill(binary) => {
                let log = self.log_path(self.starts);
                let log = std::fs::File::create(&log)
                    .map_err(|e| format!("creating {}: {e}", log.display()))?;
                let child = std::process::Command::new(binary)
                    .arg("run")
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .arg("--config")
                    .arg(&self.config_path)
                    .args(["--namespace", &ns])
                    .args(["--default-allowed-namespaces", &ns])
                    .args(["--identity-namespace", &ns])
                    .args(["--identity-selector", &selector])
                    .args(["--inventory-interval", "1"])
                    .args(["--task-poll-interval", "100"])
                    .args(["--resync-interval", "0"])
                    .args(["--metrics-addr", "127.0.0.1:0"])
                    .arg("--log-level")
                    .arg(std::env::var(LOG_LEVEL_VAR).unwrap_or_else(|_| "info".to_string()))
                    .env_remove("RUST_LOG")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(log)
                    .spawn()
                    .map_err(|e| format!("starting {}: {e}", binary.display()))?;
                Running::Process(ChildProcess(child))
            }
        });
        Ok(())
    }

    /// Where the binary's log of start `start` goes: `PVE_OPERATOR_KILL_LOGS` (a directory) to
    /// keep them, else the run's temporary directory.
    fn log_path(&self, start: u32) -> PathBuf {
        let file = format!("{}-controller-{start}.log", self.namespace);
        match std::env::var_os(LOGS_VAR) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join(file),
            _ => self.dir.path().join(file),
        }
    }

    /// Kills the controller as a crash would: no graceful shutdown, nothing more sent. Returns
    /// once it is dead.
    async fn kill(&mut self) {
        match self.controller.take() {
            Some(Running::Task(controller)) => controller.abort().await,
            Some(Running::Process(mut child)) => child.kill(),
            None => {}
        }
    }

    /// Stops the controller for good (gracefully where it can) and the simulator.
    async fn stop(mut self) {
        match self.controller.take() {
            Some(Running::Task(controller)) => {
                let _ = tokio::time::timeout(Duration::from_secs(10), controller.stop()).await;
            }
            Some(Running::Process(mut child)) => child.kill(),
            None => {}
        }
        self.sim.shutdown().await;
    }

    async fn apply(&mut self, spec: Value) -> Result<(), String> {
        let request = json!({
            "apiVersion": "pve-operator.dev/v1alpha1",
            "kind": "MachineRequest",
            "metadata": { "name": REQUEST },
            "spec": spec,
        });
        let applied = self
            .requests()
            .patch(
                REQUEST,
                &PatchParams::apply("kill-tests").force(),
                &Patch::Apply(&request),
            )
            .await
            .map_err(|e| format!("applying the request: {e}"))?;
        self.marker = Marker::of(&applied);
        Ok(())
    }

    async fn delete(&self) -> Result<(), String> {
        self.requests()
            .delete(REQUEST, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| format!("deleting the request: {e}"))
    }

    /// Waits until the request is Ready for its current generation.
    async fn wait_ready(&self) -> Result<MachineRequest, String> {
        let ready = |obj: Option<&MachineRequest>| {
            obj.is_some_and(|o| {
                o.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.observed_generation == o.metadata.generation
                    })
                })
            })
        };
        let waited = tokio::time::timeout(
            RECOVERY_DEADLINE,
            await_condition(self.requests(), REQUEST, ready),
        )
        .await;
        match waited {
            Ok(Ok(Some(request))) => Ok(request),
            _ => Err(format!(
                "not Ready for its current spec within {} s; now: {}",
                RECOVERY_DEADLINE.as_secs(),
                self.request_now().await
            )),
        }
    }

    /// Waits until the request is gone (its finalizer released).
    async fn wait_gone(&self) -> Result<(), String> {
        let waited = tokio::time::timeout(
            RECOVERY_DEADLINE,
            await_condition(self.requests(), REQUEST, |obj: Option<&MachineRequest>| {
                obj.is_none()
            }),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(format!(
                "the finalizer was not released within {} s; now: {}",
                RECOVERY_DEADLINE.as_secs(),
                self.request_now().await
            )),
        }
    }

    /// Waits until `opens` happens (the change itself was made at `changed_at`).
    async fn window_opens(&self, opens: Opens, changed_at: Instant) -> Result<Instant, String> {
        let deadline = Instant::now() + WINDOW_DEADLINE;
        let missed = || async {
            format!(
                "the window never opened ({opens} within {} s); request: {}",
                WINDOW_DEADLINE.as_secs(),
                self.request_now().await
            )
        };
        match opens {
            Opens::AtTheChange => Ok(changed_at),
            Opens::VmidRecorded => {
                let recorded = |obj: Option<&MachineRequest>| {
                    obj.and_then(|o| o.status.as_ref())
                        .is_some_and(|s| s.vmid.is_some())
                };
                match tokio::time::timeout(
                    WINDOW_DEADLINE,
                    await_condition(self.requests(), REQUEST, recorded),
                )
                .await
                {
                    Ok(Ok(Some(_))) => Ok(Instant::now()),
                    _ => Err(missed().await),
                }
            }
            Opens::TaskStarted(kind) | Opens::TaskEnded(kind) => {
                let from = self.tasks_at_change;
                let ended = matches!(opens, Opens::TaskEnded(_));
                loop {
                    let found = self.sim.with_state(|s| {
                        let now = pve_sim::clock::now_ms(s.clock_offset_ms);
                        s.tasks
                            .iter()
                            .skip(from)
                            .find(|t| t.kind == kind)
                            .is_some_and(|t| !ended || t.end_ms <= now)
                    });
                    if found {
                        return Ok(Instant::now());
                    }
                    if Instant::now() > deadline {
                        return Err(missed().await);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }

    /// The request's status in a line, for reports.
    async fn request_now(&self) -> String {
        match self.requests().get_opt(REQUEST).await {
            Ok(Some(request)) => describe_request(&request),
            Ok(None) => "gone".to_string(),
            Err(e) => format!("unreadable ({e})"),
        }
    }

    /// The request and the run's VMs and tasks in Proxmox, in a line.
    async fn describe(&self) -> String {
        let request = self.request_now().await;
        let marker = self.marker.clone();
        let (vms, running) = self.sim.with_state(|s| {
            let vms: Vec<String> = s
                .vms
                .values()
                .filter(|vm| !self.initial_vms.contains(&vm.vmid))
                .map(|vm| {
                    format!(
                        "VM {} ({}{}, marker: {})",
                        vm.vmid,
                        match vm.power {
                            Power::Running => "running",
                            Power::Stopped => "stopped",
                            Power::Paused => "paused",
                        },
                        vm.lock
                            .as_ref()
                            .map(|l| format!(", lock {l}"))
                            .unwrap_or_default(),
                        marker
                            .as_ref()
                            .map_or("?", |m| marker_parts(vm, m).describe())
                    )
                })
                .collect();
            let now = pve_sim::clock::now_ms(s.clock_offset_ms);
            let running: Vec<String> = s
                .tasks
                .iter()
                .filter(|t| t.exitstatus.is_none() && t.end_ms > now)
                .map(|t| t.kind.clone())
                .collect();
            (vms, running)
        });
        format!(
            "request {request} | Proxmox: {}; tasks running: {}",
            if vms.is_empty() {
                "no VM".to_string()
            } else {
                vms.join(", ")
            },
            if running.is_empty() {
                "none".to_string()
            } else {
                running.join(", ")
            }
        )
    }

    /// The simulator's state once every task of the run has ended (Proxmox applies a task's
    /// effect on the next request after its end, so one is sent).
    async fn settled_state(&self) -> SimState {
        let deadline = Instant::now() + WINDOW_DEADLINE;
        loop {
            let _ = self.pve.cluster_resources(None).await;
            let (running, state) = self.sim.with_state(|s| (!s.running.is_empty(), s.clone()));
            if !running || Instant::now() > deadline {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// VMs that carry any part of the request's marker, when more than one does.
    fn marked_at_once(&self, state: &SimState) -> Vec<String> {
        let Some(marker) = &self.marker else {
            return Vec::new();
        };
        let marked: Vec<u32> = state
            .vms
            .values()
            .filter(|vm| !vm.is_template() && marker_parts(vm, marker).any())
            .map(|vm| vm.vmid)
            .collect();
        if marked.len() > 1 {
            vec![format!("VMs {marked:?} carry the request's marker at once")]
        } else {
            Vec::new()
        }
    }

    /// Duplicates (every VM the run made beyond the first) and orphans (every VM left after
    /// the deletion, marked or not).
    async fn audit(&self, outcome: &mut Outcome) {
        let state = self.settled_state().await;
        let made = made_vms(&state, self.tasks_at_change, self.scenario);
        if made.len() > 1 {
            outcome.duplicates.push(format!(
                "Proxmox made VMs {made:?} for one request (tasks: {})",
                made_by(&state, self.tasks_at_change)
            ));
        }
        let marker = self.marker.clone();
        for vm in state.vms.values() {
            if self.initial_vms.contains(&vm.vmid) {
                continue;
            }
            let parts = marker
                .as_ref()
                .map_or(MarkerParts::default(), |m| marker_parts(vm, m));
            outcome.orphans.push(format!(
                "VM {} is left ({}, lock {}, marker: {})",
                vm.vmid,
                if vm.power == Power::Running {
                    "running"
                } else {
                    "stopped"
                },
                vm.lock.as_deref().unwrap_or("none"),
                parts.describe()
            ));
        }
        if !outcome.is_clean() {
            outcome.problems.extend(self.controller_log_tail());
        }
    }

    /// The last lines of the binary's logs, when a SIGKILL run went wrong.
    fn controller_log_tail(&self) -> Option<String> {
        if !matches!(self.mode, KillMode::SigKill(_)) {
            return None;
        }
        let tails: Vec<String> = (1..=self.starts)
            .map(|start| {
                let text = std::fs::read_to_string(self.log_path(start)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
                format!("controller log {start} (last lines):\n    {tail}")
            })
            .collect();
        Some(tails.join("\n  "))
    }
}

/// The faults that widen the windows: task-starting calls held back before Proxmox carries
/// them out and after (before the answer), task status reads slowed. Latency only: every call
/// succeeds.
fn widening_faults(seed: u64) -> FaultConfig {
    let rule = |method: &str, path: &str, fault: FaultKind| FaultRule {
        method: Some(method.to_string()),
        path: Some(path.to_string()),
        rate: 1.0,
        max_count: None,
        fault,
    };
    let task_starting = [
        ("POST", "/nodes/{node}/qemu"),
        ("POST", "/nodes/{node}/qemu/{vmid}/clone"),
        ("POST", "/nodes/{node}/qemu/{vmid}/config"),
        ("PUT", "/nodes/{node}/qemu/{vmid}/resize"),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/start"),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown"),
        ("DELETE", "/nodes/{node}/qemu/{vmid}"),
    ];
    let mut rules = Vec::new();
    for (method, path) in task_starting {
        rules.push(rule(method, path, FaultKind::Latency { ms: HOLD_MS }));
        rules.push(rule(
            method,
            path,
            FaultKind::LatencyAfter { ms: ANSWER_MS },
        ));
    }
    rules.push(rule(
        "GET",
        "/nodes/{node}/tasks/{upid}/status",
        FaultKind::Latency { ms: STATUS_READ_MS },
    ));
    FaultConfig { seed, rules }
}
