//! What a kill run found, and how it is judged: the outcome of a run and its report, which
//! parts of the request's marker a VM carries, the VMs Proxmox made during the run, and what is
//! wrong with the request's VM measured against its spec.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use pve_operator::vmspec::Marker;
use pve_operator_api::{MachineRequest, PowerState};
use pve_sim::state::{Power, SimState, Vm};
use pve_sim::tasks::TaskAction;

use super::{Plan, Scenario};

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

/// Which parts of a marker a VM carries.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MarkerParts {
    tag: bool,
    line: bool,
    smbios: bool,
}

impl MarkerParts {
    pub(super) fn any(self) -> bool {
        self.tag || self.line || self.smbios
    }

    pub(super) fn describe(self) -> &'static str {
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

pub(super) fn marker_parts(vm: &Vm, marker: &Marker) -> MarkerParts {
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
pub(super) fn made_vms(state: &SimState, from: usize, scenario: Scenario) -> BTreeSet<u32> {
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
pub(super) fn made_by(state: &SimState, from: usize) -> String {
    let kinds: Vec<String> = state
        .tasks
        .iter()
        .skip(from)
        .map(|t| format!("{} {}", t.kind, t.id))
        .collect();
    kinds.join(", ")
}

/// What is wrong with the request's VM, measured against its spec.
pub(super) fn vm_matches_spec(state: &SimState, request: &MachineRequest) -> Vec<String> {
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

pub(super) fn describe_request(request: &MachineRequest) -> String {
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
