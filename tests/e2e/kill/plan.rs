//! What a kill run does: the scenarios, the windows of each where a kill matters (when each
//! opens, as the test can observe it, and how far into it the kill may land), and the plan of
//! one run as drawn from its seed.

use std::fmt;

use serde_json::{Value, json};

use super::seed::Rng;
use super::{
    AFTER_END_MS, ANSWER_MS, CLONE_MS, CONFIG_MS, CREATE_MS, DESTROY_MS, HOLD_MS, MAX_DOWNTIME_MS,
    RESIZE_MS, STOP_MS, TEMPLATE,
};

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
    pub(super) fn spec(self) -> Value {
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
    pub(super) fn drifted_spec() -> Value {
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
pub(super) enum Opens {
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
    pub(super) opens: Opens,
    /// The kill comes `from_ms + (0..=span_ms)` after the window opens.
    pub(super) from_ms: u64,
    pub(super) span_ms: u64,
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
