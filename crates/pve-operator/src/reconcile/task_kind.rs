//! The Proxmox tasks the controller starts and waits for, by kind: one name for each, where the
//! code used to spell the task types (`qmcreate`, ...) as string literals in several files.

use pve_operator_api::TaskRef;

/// A kind of Proxmox task the controller starts (`TaskRef::task_type` holds its wire name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// `qmcreate`: creating a VM.
    Create,
    /// `qmclone`: cloning a template.
    Clone,
    /// `qmstart`: starting a VM.
    Start,
    /// `qmshutdown`: a clean shutdown.
    Shutdown,
    /// `qmstop`: a hard stop.
    Stop,
    /// `qmdestroy`: destroying a VM and its disks.
    Destroy,
    /// `qmconfig`: an asynchronous config update.
    Config,
}

impl TaskKind {
    /// Every kind, e.g. for metrics that list them all.
    pub const ALL: [TaskKind; 7] = [
        TaskKind::Create,
        TaskKind::Clone,
        TaskKind::Start,
        TaskKind::Shutdown,
        TaskKind::Stop,
        TaskKind::Destroy,
        TaskKind::Config,
    ];

    /// The task type as Proxmox names it in UPIDs and task lists.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Create => "qmcreate",
            TaskKind::Clone => "qmclone",
            TaskKind::Start => "qmstart",
            TaskKind::Shutdown => "qmshutdown",
            TaskKind::Stop => "qmstop",
            TaskKind::Destroy => "qmdestroy",
            TaskKind::Config => "qmconfig",
        }
    }

    /// The kind of a Proxmox task type, if it is one the controller starts.
    pub fn from_task_type(task_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == task_type)
    }

    /// What the task does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            TaskKind::Create => "creating the VM",
            TaskKind::Clone => "cloning the template",
            TaskKind::Start => "starting the VM",
            TaskKind::Shutdown => "shutting down the VM",
            TaskKind::Stop => "stopping the VM",
            TaskKind::Destroy => "destroying the VM",
            TaskKind::Config => "updating the VM's config",
        }
    }

    /// The status record of a task of this kind with `upid`.
    pub fn task_ref(self, upid: impl ToString) -> TaskRef {
        TaskRef {
            upid: upid.to_string(),
            task_type: self.as_str().to_string(),
        }
    }
}

/// What a recorded task does, with its UPID, for messages (a task type the controller does not
/// start, e.g. from a newer version's status, is "a Proxmox task").
pub fn describe_task(task: &TaskRef) -> String {
    let what =
        TaskKind::from_task_type(&task.task_type).map_or("a Proxmox task", TaskKind::describe);
    format!("{what} ({})", task.upid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_back_from_its_wire_name_and_is_described() {
        for kind in TaskKind::ALL {
            assert_eq!(TaskKind::from_task_type(kind.as_str()), Some(kind));
            let task = kind.task_ref("UPID:pve1:0:0:0:x:100:root@pam:");
            assert_eq!(task.task_type, kind.as_str());
            assert!(describe_task(&task).starts_with(kind.describe()));
        }
        assert_eq!(TaskKind::from_task_type("resize"), None);
        let other = TaskRef {
            upid: "U".into(),
            task_type: "vzdump".into(),
        };
        assert_eq!(describe_task(&other), "a Proxmox task (U)");
    }
}
