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
//! CI runs the handful of tests in [`ci`]. The same engine runs 50 times in
//! `cargo bench -p pve-operator --bench kill` (`hack/kill-test.sh`, which includes this file),
//! whose numbers are in docs/kill-tests.md.
//!
//! The engine: [`seed`] (the generator and the seeds of a series), [`plan`] (scenarios, their
//! windows, the plan a seed draws), [`rig`] (one run: simulator, controller, the kill, the
//! restart) and [`findings`] (what a run found and how it is judged).

// The bench includes this file by `#[path]`, and a file included so looks for its modules
// beside it (tests/e2e/), not in kill/: hence the paths, which hold for both.
#[path = "kill/ci.rs"]
mod ci;
#[path = "kill/findings.rs"]
mod findings;
#[path = "kill/plan.rs"]
mod plan;
#[path = "kill/rig.rs"]
mod rig;
#[path = "kill/seed.rs"]
mod seed;

use std::time::Duration;

pub use findings::Outcome;
pub use plan::{Plan, Scenario};
pub use rig::{KillMode, kill_run};
pub use seed::{SEED_VAR, base_seed, parse_seed, run_seed};

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
