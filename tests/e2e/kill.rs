//! Kill tests (issue 12): the controller is killed at a random point of a create, a clone, a
//! drift correction (config update, disk resize, power change) or a deletion, and started again.
//! Afterwards no request ever had two VMs, no VM is left behind, every finalizer is released and
//! every request was Ready for its current spec (or is gone, when deleted).
//!
//! A run is drawn from one seed (SplitMix64, no dependency): the window to kill in, the delay
//! inside it, and how long the controller stays down. The windows are those where a crash can
//! lose or duplicate a VM: between recording the VMID in status and the create or clone
//! reaching Proxmox; between Proxmox starting a task and the controller recording its UPID;
//! while a task runs; between a task's end and the status write; during a deletion, between stop
//! and destroy. The simulator widens them (tasks last hundreds of milliseconds, task-starting
//! calls are held back before Proxmox carries them out and their answers after, task status
//! reads are slowed) and says where a run is (its request counters, its tasks), so that a kill
//! waits for its window to open, not for a guessed time; only the delay inside the window is a
//! sleep, and it is the point of the test.
//!
//! "Killed" is what a crash does: the controller's task is aborted without a graceful shutdown
//! (no in-flight reconcile finishes, nothing more is sent), or, with
//! `PVE_OPERATOR_KILL_BINARY=<path to the pve-operator binary>`, the real process gets SIGKILL.
//! `PVE_OPERATOR_KILL_SEED=<seed>` repeats the runs of an earlier test run (each prints it);
//! `PVE_OPERATOR_KILL_LOGS=<dir>` keeps the binary's logs, `PVE_OPERATOR_KILL_LOG_LEVEL` sets
//! their filter (`info`; e.g. `pve_operator=debug,info`).
//!
//! CI runs the handful of tests at the end of this file. The same engine runs 50 times in
//! `cargo bench -p pve-operator --bench kill` (`hack/kill-test.sh`, which includes this file),
//! whose numbers are in docs/kill-tests.md.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{RunArgs, run_with_client};
use pve_operator::vmspec::Marker;
use pve_operator_api::{MachineRequest, PowerState};
use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};
use pve_sim::state::{Power, SimState, Vm};
use pve_sim::tasks::TaskAction;
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

/// How long the simulator's tasks take in a kill run, in milliseconds: long enough to land a
/// kill inside them.
const CREATE_MS: u64 = 600;
const CLONE_MS: u64 = 800;
const START_MS: u64 = 300;
const STOP_MS: u64 = 500;
const SHUTDOWN_MS: u64 = 500;
const DESTROY_MS: u64 = 500;
const CONFIG_MS: u64 = 400;
const RESIZE_MS: u64 = 300;
/// Task-starting calls wait this long before Proxmox carries them out (a kill meanwhile means
/// the call never took effect) ...
const HOLD_MS: u64 = 250;
/// ... and their answers this long after (a kill meanwhile leaves a task that the controller
/// never learnt the UPID of).
const ANSWER_MS: u64 = 250;
/// Task status reads are slowed by this much, so that the tracker learns late of a task's end.
const STATUS_READ_MS: u64 = 80;
/// How long the status write may follow a task's end: the tracker's poll (100 ms), its slowed
/// read, the reconcile.
const AFTER_END_MS: u64 = 350;
/// The longest the controller stays down after a kill.
const MAX_DOWNTIME_MS: u64 = 500;
/// The longest a run may take to reach its end state after the restart (a hang guard, not a
/// speed assertion: recovery waits on requeues of up to 30 s).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);
/// How long a window may take to open.
const WINDOW_DEADLINE: Duration = Duration::from_secs(60);
/// The simulator's template.
const TEMPLATE: u32 = 9000;
const ROOT_PASSWORD: &str = "kill-test-root-password";
/// The label that the identities of one run would carry: the controller serves no other (the
/// identities of tests running beside it are none of its business).
const IDENTITY_LABEL: &str = "kill-test.pve-operator.dev/run";
/// The request of every run.
const REQUEST: &str = "victim";
/// A directory that keeps the binary's logs (SIGKILL runs); by default they go with the run.
const LOGS_VAR: &str = "PVE_OPERATOR_KILL_LOGS";
/// The binary's log filter (SIGKILL runs), `info` by default.
const LOG_LEVEL_VAR: &str = "PVE_OPERATOR_KILL_LOG_LEVEL";

// --- seeds ------------------------------------------------------------------------------------

/// SplitMix64: a small, good generator whose whole state is its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// The seed of run `index` of a series started from `base`.
pub fn run_seed(base: u64, index: u64) -> u64 {
    Rng::new(base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// The environment variable that repeats a series of runs.
pub const SEED_VAR: &str = "PVE_OPERATOR_KILL_SEED";

/// `PVE_OPERATOR_KILL_SEED` (decimal or `0x` hex), else one from the clock.
pub fn base_seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => parse_seed(&text)
            .unwrap_or_else(|| panic!("{SEED_VAR}={text:?} is not a number (decimal or 0x hex)")),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Rng::new(now.as_nanos() as u64).next_u64()
        }
    }
}

/// A seed as printed (`0x...`) or in decimal.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

// --- what a run does --------------------------------------------------------------------------

/// What the controller is doing when it is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Creating a VM (network boot) and starting it.
    Create,
    /// Cloning a template, completing the marker with the first update, growing the disk,
    /// starting the clone.
    Clone,
    /// Correcting a running VM to a changed spec: a config update (cores, memory), a disk
    /// resize and a power change (to stopped).
    Drift,
    /// Deleting a running VM: stop, destroy, release the finalizer.
    Delete,
    /// Deleting a request while its VM is being created: wait for the create, destroy, release.
    DeleteWhileCreating,
}

impl Scenario {
    /// Every scenario, in the order the series cycles through them.
    pub const ALL: [Scenario; 5] = [
        Scenario::Create,
        Scenario::Clone,
        Scenario::Drift,
        Scenario::Delete,
        Scenario::DeleteWhileCreating,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Create => "create",
            Scenario::Clone => "clone",
            Scenario::Drift => "drift",
            Scenario::Delete => "delete",
            Scenario::DeleteWhileCreating => "delete-while-creating",
        }
    }

    /// The windows a kill of this scenario lands in.
    pub fn windows(self) -> &'static [Window] {
        match self {
            Scenario::Create => &CREATE_WINDOWS,
            Scenario::Clone => &CLONE_WINDOWS,
            Scenario::Drift => &DRIFT_WINDOWS,
            Scenario::Delete => &DELETE_WINDOWS,
            Scenario::DeleteWhileCreating => &DELETE_WHILE_CREATING_WINDOWS,
        }
    }

    /// The spec the request starts with (and, but for drift, keeps).
    fn spec(self) -> Value {
        let mut spec = json!({
            "cpu": { "cores": 1 },
            "memory": { "sizeMiB": 256 },
            "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 2 }],
            "networks": [{ "name": "net0", "bridge": "vmbr0" }],
            "boot": { "network": {} },
        });
        if self == Scenario::Clone {
            // The template's disk is 8 GiB: the clone grows it.
            spec["disks"][0]["sizeGiB"] = json!(10);
            spec["boot"] = json!({ "template": { "vmid": TEMPLATE } });
        }
        spec
    }

    /// The spec after the change of a drift run: every kind of correction at once.
    fn drifted_spec() -> Value {
        let mut spec = Scenario::Drift.spec();
        spec["cpu"]["cores"] = json!(2);
        spec["memory"]["sizeMiB"] = json!(512);
        spec["disks"][0]["sizeGiB"] = json!(3);
        spec["powerState"] = json!("Stopped");
        spec
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a window opens, as the test can observe it.
#[derive(Debug, Clone, Copy)]
enum Opens {
    /// The test made its change (applied the spec change, asked for the deletion).
    AtTheChange,
    /// `status.vmid` is set.
    VmidRecorded,
    /// Proxmox started a task of this type.
    TaskStarted(&'static str),
    /// A task of this type ended in Proxmox.
    TaskEnded(&'static str),
}

impl fmt::Display for Opens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opens::AtTheChange => f.write_str("the change"),
            Opens::VmidRecorded => f.write_str("status.vmid was recorded"),
            Opens::TaskStarted(kind) => write!(f, "{kind} started"),
            Opens::TaskEnded(kind) => write!(f, "{kind} ended"),
        }
    }
}

/// A stretch of a scenario where a kill matters.
#[derive(Debug)]
pub struct Window {
    /// Short name, for reports.
    pub name: &'static str,
    /// What is true inside it.
    pub what: &'static str,
    opens: Opens,
    /// The kill comes `from_ms + (0..=span_ms)` after the window opens.
    from_ms: u64,
    span_ms: u64,
}

const fn window(
    name: &'static str,
    what: &'static str,
    opens: Opens,
    from_ms: u64,
    span_ms: u64,
) -> Window {
    Window {
        name,
        what,
        opens,
        from_ms,
        span_ms,
    }
}

const CREATE_WINDOWS: [Window; 6] = [
    window(
        "vmid-recorded",
        "the VMID is recorded in status, the create not yet carried out",
        Opens::VmidRecorded,
        0,
        HOLD_MS + 50,
    ),
    window(
        "create-unanswered",
        "Proxmox carried out the create, its UPID is not yet recorded",
        Opens::TaskStarted("qmcreate"),
        0,
        ANSWER_MS,
    ),
    window(
        "create-running",
        "the create task runs",
        Opens::TaskStarted("qmcreate"),
        ANSWER_MS,
        CREATE_MS - ANSWER_MS,
    ),
    window(
        "create-ended",
        "the create task ended, the status write has not followed",
        Opens::TaskEnded("qmcreate"),
        0,
        AFTER_END_MS,
    ),
    window(
        "start-unanswered",
        "Proxmox carried out the start, its UPID is not yet recorded",
        Opens::TaskStarted("qmstart"),
        0,
        ANSWER_MS,
    ),
    window(
        "start-ended",
        "the start task ended, the status write has not followed",
        Opens::TaskEnded("qmstart"),
        0,
        AFTER_END_MS,
    ),
];

const CLONE_WINDOWS: [Window; 6] = [
    window(
        "vmid-recorded",
        "the VMID is recorded in status, the clone not yet carried out",
        Opens::VmidRecorded,
        0,
        HOLD_MS + 50,
    ),
    window(
        "clone-unanswered",
        "Proxmox carried out the clone (the new VM holds only the description line), its UPID is not yet recorded",
        Opens::TaskStarted("qmclone"),
        0,
        ANSWER_MS,
    ),
    window(
        "clone-running",
        "the clone task runs",
        Opens::TaskStarted("qmclone"),
        ANSWER_MS,
        CLONE_MS - ANSWER_MS,
    ),
    window(
        "clone-ended",
        "the clone ended, the first update (which completes the marker) not yet carried out",
        Opens::TaskEnded("qmclone"),
        0,
        AFTER_END_MS + HOLD_MS,
    ),
    window(
        "first-update",
        "Proxmox carried out the first update, unanswered or running",
        Opens::TaskStarted("qmconfig"),
        0,
        ANSWER_MS + CONFIG_MS,
    ),
    window(
        "start-ended",
        "the start task ended, the status write has not followed",
        Opens::TaskEnded("qmstart"),
        0,
        AFTER_END_MS,
    ),
];

const DRIFT_WINDOWS: [Window; 6] = [
    window(
        "spec-changed",
        "the spec changed, the config update not yet carried out",
        Opens::AtTheChange,
        0,
        HOLD_MS + 100,
    ),
    window(
        "update-unanswered",
        "Proxmox carried out the config update, its UPID is not yet recorded",
        Opens::TaskStarted("qmconfig"),
        0,
        ANSWER_MS,
    ),
    window(
        "update-ended",
        "the config update ended, the resize not yet carried out",
        Opens::TaskEnded("qmconfig"),
        0,
        AFTER_END_MS + HOLD_MS,
    ),
    window(
        "resize",
        "Proxmox carried out the disk resize, unanswered or running",
        Opens::TaskStarted("resize"),
        0,
        ANSWER_MS + RESIZE_MS,
    ),
    window(
        "shutdown-unanswered",
        "Proxmox carried out the shutdown, its UPID is not yet recorded",
        Opens::TaskStarted("qmshutdown"),
        0,
        ANSWER_MS,
    ),
    window(
        "shutdown-ended",
        "the shutdown ended, the status write has not followed",
        Opens::TaskEnded("qmshutdown"),
        0,
        AFTER_END_MS,
    ),
];

const DELETE_WINDOWS: [Window; 7] = [
    window(
        "deletion-requested",
        "the deletion is asked for, the stop not yet carried out",
        Opens::AtTheChange,
        0,
        HOLD_MS + 100,
    ),
    window(
        "stop-unanswered",
        "Proxmox carried out the stop, its UPID is not yet recorded",
        Opens::TaskStarted("qmstop"),
        0,
        ANSWER_MS,
    ),
    window(
        "stop-running",
        "the stop task runs",
        Opens::TaskStarted("qmstop"),
        ANSWER_MS,
        STOP_MS - ANSWER_MS,
    ),
    window(
        "between-stop-and-destroy",
        "the VM is stopped, the destroy not yet carried out",
        Opens::TaskEnded("qmstop"),
        0,
        AFTER_END_MS + HOLD_MS,
    ),
    window(
        "destroy-unanswered",
        "Proxmox carried out the destroy, its UPID is not yet recorded",
        Opens::TaskStarted("qmdestroy"),
        0,
        ANSWER_MS,
    ),
    window(
        "destroy-running",
        "the destroy task runs",
        Opens::TaskStarted("qmdestroy"),
        ANSWER_MS,
        DESTROY_MS - ANSWER_MS,
    ),
    window(
        "destroy-ended",
        "the VM is destroyed, the finalizer not yet released",
        Opens::TaskEnded("qmdestroy"),
        0,
        AFTER_END_MS,
    ),
];

const DELETE_WHILE_CREATING_WINDOWS: [Window; 4] = [
    window(
        "deleted-while-creating",
        "the deletion is asked for while the create task runs (the VM is locked, its marker not yet written)",
        Opens::AtTheChange,
        0,
        CREATE_MS,
    ),
    window(
        "destroy-unanswered",
        "Proxmox carried out the destroy, its UPID is not yet recorded",
        Opens::TaskStarted("qmdestroy"),
        0,
        ANSWER_MS,
    ),
    window(
        "destroy-running",
        "the destroy task runs",
        Opens::TaskStarted("qmdestroy"),
        ANSWER_MS,
        DESTROY_MS - ANSWER_MS,
    ),
    window(
        "destroy-ended",
        "the VM is destroyed, the finalizer not yet released",
        Opens::TaskEnded("qmdestroy"),
        0,
        AFTER_END_MS,
    ),
];

/// One run, as drawn from its seed.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// What the controller does.
    pub scenario: Scenario,
    /// The seed everything below was drawn from.
    pub seed: u64,
    /// Where the kill lands.
    pub window: &'static Window,
    /// How long after the window opened.
    pub delay_ms: u64,
    /// How long the controller stays down.
    pub downtime_ms: u64,
}

impl Plan {
    /// The run of `scenario` that `seed` stands for.
    pub fn draw(scenario: Scenario, seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let windows = scenario.windows();
        let window = &windows[rng.below(windows.len() as u64) as usize];
        let delay_ms = window.from_ms + rng.below(window.span_ms + 1);
        let downtime_ms = rng.below(MAX_DOWNTIME_MS + 1);
        Plan {
            scenario,
            seed,
            window,
            delay_ms,
            downtime_ms,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seed {:#018x}: killed {} ms after {} (window {}: {}), restarted {} ms later",
            self.scenario,
            self.seed,
            self.delay_ms,
            self.window.opens,
            self.window.name,
            self.window.what,
            self.downtime_ms
        )
    }
}

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

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The run.
    pub plan: Plan,
    /// How the controller was killed.
    pub mode: &'static str,
    /// The request and Proxmox as the restarted controller found them.
    pub at_kill: String,
    /// VMs made beyond the request's one (each a duplicate), and VMs carrying its marker at once.
    pub duplicates: Vec<String>,
    /// VMs left behind after the deletion.
    pub orphans: Vec<String>,
    /// Whether the request's finalizer was released (the object is gone after the deletion).
    pub finalizer_released: bool,
    /// Whether the request became Ready for its current spec (deletion runs: not asked).
    pub ready: Option<bool>,
    /// Anything else that went wrong: a window that never opened, a spec not applied, a hang.
    pub problems: Vec<String>,
    /// The run's wall time.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the run found nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.duplicates.is_empty()
            && self.orphans.is_empty()
            && self.finalizer_released
            && self.ready != Some(false)
            && self.problems.is_empty()
    }

    /// Fails the test with everything the run found, unless it is clean.
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "the kill run went wrong:\n{self}");
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}", self.mode, self.plan)?;
        writeln!(f, "  at the kill: {}", self.at_kill)?;
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join("; ")
            }
        };
        writeln!(
            f,
            "  duplicates: {}; orphans: {}; finalizer released: {}; ready: {}; {:.1} s",
            list(&self.duplicates),
            list(&self.orphans),
            self.finalizer_released,
            match self.ready {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "(deleted)",
            },
            self.elapsed.as_secs_f64()
        )?;
        if !self.problems.is_empty() {
            writeln!(f, "  problems: {}", self.problems.join("; "))?;
        }
        Ok(())
    }
}

// --- one run ----------------------------------------------------------------------------------

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
    Task {
        handle: tokio::task::JoinHandle<anyhow::Result<()>>,
        stop: tokio::sync::oneshot::Sender<()>,
    },
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
        let config = format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root@pam\n  password: \"{}\"\n",
            sim.url(),
            sim.fingerprint(),
            sim.root_password()
        );
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
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
                let handle = tokio::spawn(run_with_client(args, self.client.clone(), async {
                    let _ = stopped.await;
                }));
                Running::Task { handle, stop }
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
            Some(Running::Task { handle, stop }) => {
                handle.abort();
                let _ = handle.await;
                // Only now: a stop signal before the abort took effect would be a graceful one.
                drop(stop);
            }
            Some(Running::Process(mut child)) => child.kill(),
            None => {}
        }
    }

    /// Stops the controller for good (gracefully where it can) and the simulator.
    async fn stop(mut self) {
        match self.controller.take() {
            Some(Running::Task { handle, stop }) => {
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
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

/// Which parts of a marker a VM carries.
#[derive(Debug, Default, Clone, Copy)]
struct MarkerParts {
    tag: bool,
    line: bool,
    smbios: bool,
}

impl MarkerParts {
    fn any(self) -> bool {
        self.tag || self.line || self.smbios
    }

    fn describe(self) -> &'static str {
        match (self.tag, self.line, self.smbios) {
            (true, true, true) => "full",
            (true, true, false) => "tag and line",
            (false, true, _) => "line only",
            (true, false, _) => "tag only",
            (false, false, true) => "smbios only",
            (false, false, false) => "none",
        }
    }
}

fn marker_parts(vm: &Vm, marker: &Marker) -> MarkerParts {
    let tags: Vec<&str> = vm
        .conf
        .get("tags")
        .map(|t| t.split([';', ',', ' ']).collect())
        .unwrap_or_default();
    MarkerParts {
        tag: marker.is_in_tags(&tags),
        line: vm
            .conf
            .get("description")
            .is_some_and(|d| marker.is_in_description(d)),
        smbios: vm.conf.get("smbios1").is_some_and(|s| {
            s.split(',')
                .any(|p| p.eq_ignore_ascii_case(&marker.smbios1()))
        }),
    }
}

/// The VMIDs of the VMs Proxmox made (created or cloned, with a task that did not fail) since
/// task `from`; the other runs made theirs before it, and count it.
fn made_vms(state: &SimState, from: usize, scenario: Scenario) -> BTreeSet<u32> {
    let start = match scenario {
        Scenario::Create | Scenario::Clone => from,
        Scenario::Drift | Scenario::Delete | Scenario::DeleteWhileCreating => 0,
    };
    state
        .tasks
        .iter()
        .skip(start)
        .filter(|t| t.exitstatus.as_deref().is_none_or(|e| e == "OK"))
        .filter_map(|t| match &t.action {
            TaskAction::Create { vmid, .. } => Some(*vmid),
            TaskAction::Clone { newid, .. } => Some(*newid),
            _ => None,
        })
        .collect()
}

/// The run's tasks since `from`, in order, for a duplicate's report.
fn made_by(state: &SimState, from: usize) -> String {
    let kinds: Vec<String> = state
        .tasks
        .iter()
        .skip(from)
        .map(|t| format!("{} {}", t.kind, t.id))
        .collect();
    kinds.join(", ")
}

/// What is wrong with the request's VM, measured against its spec.
fn vm_matches_spec(state: &SimState, request: &MachineRequest) -> Vec<String> {
    let Some(vmid) = request.status.as_ref().and_then(|s| s.vmid) else {
        return vec!["Ready without status.vmid".to_string()];
    };
    let Some(vm) = state.vms.get(&vmid) else {
        return vec![format!(
            "Ready, but VM {vmid} (status.vmid) is not in Proxmox"
        )];
    };
    let mut problems = Vec::new();
    if let Some(marker) = Marker::of(request)
        && marker_parts(vm, &marker).describe() != "full"
    {
        problems.push(format!(
            "VM {vmid} carries marker: {}, not the full marker",
            marker_parts(vm, &marker).describe()
        ));
    }
    let spec = &request.spec;
    if vm.memory_mib() != spec.memory.size_mib {
        problems.push(format!(
            "VM {vmid} has {} MiB, the spec {}",
            vm.memory_mib(),
            spec.memory.size_mib
        ));
    }
    let cores = vm.conf.get("cores").map(String::as_str).unwrap_or("1");
    if cores != spec.cpu.cores.to_string() {
        problems.push(format!(
            "VM {vmid} has {cores} cores, the spec {}",
            spec.cpu.cores
        ));
    }
    for disk in &spec.disks {
        let value = vm.conf.get(&disk.slot).cloned().unwrap_or_default();
        let size = format!("size={}G", disk.size_gib);
        if !value.split(',').any(|p| p == size) {
            problems.push(format!(
                "VM {vmid} disk {} is {value:?}, the spec {} GiB",
                disk.slot, disk.size_gib
            ));
        }
    }
    let running = vm.power == Power::Running;
    if running != (spec.power_state == PowerState::Running) {
        problems.push(format!(
            "VM {vmid} is {}, the spec {:?}",
            if running { "running" } else { "stopped" },
            spec.power_state
        ));
    }
    if let Some(lock) = &vm.lock {
        problems.push(format!("VM {vmid} is still locked ({lock})"));
    }
    problems
}

fn describe_request(request: &MachineRequest) -> String {
    let Some(status) = &request.status else {
        return "(no status)".to_string();
    };
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| format!("Ready={} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_else(|| "no Ready condition".to_string());
    format!(
        "status.vmid={} task={} phase={:?} finalizers={:?} {ready}",
        status
            .vmid
            .map_or_else(|| "-".to_string(), |v| v.to_string()),
        status
            .current_task
            .as_ref()
            .map_or("-", |t| t.task_type.as_str()),
        status.phase,
        request.metadata.finalizers.as_deref().unwrap_or_default()
    )
}

// --- the CI runs -------------------------------------------------------------------------------

/// The base seed of this test process's runs: one for all of them, so that one variable
/// repeats them all.
fn ci_base_seed() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(base_seed)
}

/// Runs CI run `index` of `scenario` and fails on anything it finds.
async fn ci_run(scenario: Scenario, index: u64) {
    crate::support::init_logging();
    let base = ci_base_seed();
    let mode = KillMode::from_env();
    let outcome = kill_run(scenario, run_seed(base, index), &mode).await;
    println!("kill run {index} ({SEED_VAR}={base:#x} repeats it):\n{outcome}");
    outcome.assert_clean();
}

#[test]
fn a_seed_draws_one_plan_inside_its_window_and_a_series_reaches_every_window() {
    for scenario in Scenario::ALL {
        let mut reached = BTreeSet::new();
        for index in 0..200 {
            let seed = run_seed(0x6b696c6c, index);
            let plan = Plan::draw(scenario, seed);
            let again = Plan::draw(scenario, seed);
            assert_eq!(
                (plan.window.name, plan.delay_ms, plan.downtime_ms),
                (again.window.name, again.delay_ms, again.downtime_ms),
                "{scenario} seed {seed:#x} draws one plan"
            );
            let window = plan.window;
            assert!(
                (window.from_ms..=window.from_ms + window.span_ms).contains(&plan.delay_ms)
                    && plan.downtime_ms <= MAX_DOWNTIME_MS,
                "{plan}"
            );
            reached.insert(window.name);
        }
        assert_eq!(
            reached.len(),
            scenario.windows().len(),
            "{scenario}: 200 runs reach every window, not only {reached:?}"
        );
    }
    assert_ne!(run_seed(1, 0), run_seed(1, 1), "runs of a series differ");
    assert_eq!(parse_seed("0x1F"), Some(31));
    assert_eq!(parse_seed(" 31 "), Some(31));
    assert_eq!(parse_seed("thirty-one"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_creating_a_vm_makes_one_vm_that_becomes_ready_and_is_destroyed_with_its_request()
 {
    ci_run(Scenario::Create, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_cloning_a_template_makes_one_clone_that_becomes_ready_and_is_destroyed_with_its_request()
 {
    ci_run(Scenario::Clone, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_correcting_drift_applies_the_whole_spec_with_no_second_vm() {
    ci_run(Scenario::Drift, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_deleting_a_vm_destroys_it_and_releases_the_finalizer() {
    ci_run(Scenario::Delete, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_deleting_a_vm_still_being_created_destroys_it_once_it_exists_and_releases_the_finalizer()
 {
    ci_run(Scenario::DeleteWhileCreating, 4).await;
}
