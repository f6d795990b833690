//! Every failure of a reconcile, classified (docs/design.md principle 5): transient ones back off
//! and retry; permanent ones become a condition with a reason and wait for a change; permission
//! errors name the privilege and the ACL path.

use pve_client::{ErrorKind, PveError};

use super::ownership::OwnershipConflict;
use crate::privileges::PrivilegeError;
use crate::proxmox::registry::ConnectionError;
use crate::proxmox::vmid::VmidError;
use crate::vmspec::SpecError;

/// Why a reconcile could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Proxmox answered with an error (its own message is inside).
    #[error("{action}: {source}")]
    Proxmox {
        /// What the controller was doing, e.g. `creating VM 101 on pve`.
        action: String,
        /// What Proxmox said.
        source: PveError,
    },
    /// A Proxmox task failed.
    #[error("{action} failed in Proxmox: {exit}{}", log_excerpt(exit, log_tail))]
    TaskFailed {
        /// What the task did, with its UPID.
        action: String,
        /// The task's UPID.
        upid: String,
        /// The task type (`qmcreate`, ...).
        task_type: String,
        /// Its exit status: Proxmox's error text.
        exit: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
    },
    /// The cluster connection could not be made.
    #[error(transparent)]
    Connection(Box<ConnectionError>),
    /// The spec cannot be expressed as a Proxmox config.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No VMID could be allocated.
    #[error(transparent)]
    Vmid(#[from] VmidError),
    /// Placement found no node.
    #[error("{0}")]
    Placement(String),
    /// No node has the request's passthrough devices, or a mapping is not visible.
    #[error(transparent)]
    Devices(#[from] crate::placement::devices::DeviceError),
    /// The recorded VMID is taken in Proxmox but the VM is not visible to the controller.
    #[error(
        "VMID {0} (recorded in status) is taken in Proxmox, but the controller's token cannot see that VM, so it cannot tell whether it is this request's; grant VM.Audit on /vms (or the request's pool), or clear status.vmid if the VM is someone else's"
    )]
    InvisibleVm(u32),
    /// Writing to Kubernetes failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The object lacks something the API server always sets (uid, namespace).
    #[error("the MachineRequest has no {0}")]
    Incomplete(&'static str),
    /// The node already runs as many of the controller's tasks as allowed; not a failure.
    #[error(
        "node {0} already runs as many of the controller's tasks as allowed (--max-tasks-per-node); waiting for one to end"
    )]
    NodeBusy(String),
    /// Deletion is under way (waiting for a Proxmox task); not a failure.
    #[error("deletion in progress: {0}")]
    DeletionInProgress(String),
    /// The credentials lack a privilege the next step needs (nothing was sent), or their
    /// privileges could not be read.
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    /// The spec uses something the request's identity or ProxmoxCluster does not allow.
    #[error("{0}")]
    NotAllowed(#[from] crate::tenancy::Refusals),
    /// The spec names something Proxmox does not have (checked before anything is created).
    #[error(transparent)]
    Validation(#[from] super::validate::ValidationError),
    /// The spec names a ProxmoxImage it cannot use (wrong content, another cluster).
    #[error("{0}")]
    Image(String),
    /// VMs carry part of the request's marker, or several carry its uid tag: none is touched.
    #[error(transparent)]
    Ownership(#[from] OwnershipConflict),
}

impl From<ConnectionError> for ReconcileError {
    fn from(error: ConnectionError) -> Self {
        // Boxed: a connection error is large and rare, and every Result of a reconcile step
        // would otherwise carry its size.
        ReconcileError::Connection(Box::new(error))
    }
}

/// How the controller reacts to an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Retry with backoff.
    Transient,
    /// Report in a condition with this reason; retry only slowly (or on a spec change).
    Permanent(&'static str),
    /// A missing privilege: report it with the privilege and path; retry slowly.
    Permission {
        /// The privilege(s) Proxmox named.
        privileges: Vec<String>,
        /// The ACL path Proxmox named.
        path: Option<String>,
    },
}

impl ReconcileError {
    /// Wraps a Proxmox error with what the controller was doing.
    pub fn proxmox(action: impl Into<String>) -> impl FnOnce(PveError) -> ReconcileError {
        let action = action.into();
        move |source| ReconcileError::Proxmox { action, source }
    }

    /// The reaction to this error.
    pub fn class(&self) -> Class {
        match self {
            ReconcileError::Proxmox { source, .. } => classify_pve(source),
            ReconcileError::Vmid(VmidError::Proxmox(source)) => classify_pve(source),
            ReconcileError::Vmid(VmidError::RangeExhausted { .. }) => {
                Class::Permanent("VmidRangeExhausted")
            }
            ReconcileError::TaskFailed { exit, log_tail, .. } => {
                classify_task_failure(exit, log_tail)
            }
            ReconcileError::Connection(error) if matches!(**error, ConnectionError::Kube(_)) => {
                Class::Transient
            }
            ReconcileError::Connection(error) => Class::Permanent(error.reason()),
            ReconcileError::NotAllowed(_) => Class::Permanent("NotAllowed"),
            ReconcileError::Validation(error) => Class::Permanent(error.reason()),
            ReconcileError::Spec(_) => Class::Permanent("InvalidSpec"),
            ReconcileError::Placement(_) => Class::Permanent("NoSuitableNode"),
            ReconcileError::Image(_) => Class::Permanent("ImageUnusable"),
            ReconcileError::Devices(error) => Class::Permanent(error.reason()),
            ReconcileError::InvisibleVm(_) => Class::Permission {
                privileges: vec!["VM.Audit".into()],
                path: Some("/vms".into()),
            },
            ReconcileError::Kube(_)
            | ReconcileError::DeletionInProgress(_)
            | ReconcileError::NodeBusy(_) => Class::Transient,
            ReconcileError::Incomplete(_) => Class::Permanent("Incomplete"),
            ReconcileError::Privileges(PrivilegeError::Missing { missing, .. }) => {
                // The condition names the first path and every privilege missing there; the
                // message lists all of them.
                let path = missing.first().map(|n| n.path.clone());
                Class::Permission {
                    privileges: missing
                        .iter()
                        .filter(|n| Some(&n.path) == path.as_ref())
                        .map(|n| n.privilege.to_string())
                        .collect(),
                    path,
                }
            }
            ReconcileError::Privileges(PrivilegeError::Unreadable(source)) => classify_pve(source),
            ReconcileError::Ownership(conflict) => Class::Permanent(conflict.reason()),
        }
    }

    /// Whether this is a write refused because the object changed since it was read (HTTP 409
    /// on a `resourceVersion` precondition): the reconcile started from a stale copy and is
    /// simply done again from a fresh one. Not a failure to report.
    pub fn is_stale_write(&self) -> bool {
        matches!(self, ReconcileError::Kube(kube::Error::Api(status)) if status.is_conflict())
    }

    /// Whether this is a failed Proxmox task that sending again cannot fix: its step is not
    /// sent again until the spec (or the retry annotation) changes.
    pub fn is_task_failed_for_good(&self) -> bool {
        matches!(self, ReconcileError::TaskFailed { .. })
            && !matches!(self.class(), Class::Transient)
    }

    /// The condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match (self, self.class()) {
            (_, Class::Permission { .. }) => "MissingPrivilege",
            (_, Class::Permanent(reason)) => reason,
            (ReconcileError::TaskFailed { .. }, _) => "TaskFailed",
            (ReconcileError::Proxmox { .. }, _) => "ProxmoxUnavailable",
            _ => "Retrying",
        }
    }
}

fn classify_pve(error: &PveError) -> Class {
    if let PveError::PermissionDenied {
        path, privileges, ..
    } = error
    {
        return Class::Permission {
            privileges: privileges.clone(),
            path: path.clone(),
        };
    }
    if error.is_retryable() {
        return Class::Transient;
    }
    match error.kind() {
        ErrorKind::InvalidParameters => Class::Permanent("ProxmoxRejectedSpec"),
        ErrorKind::Unauthorized => Class::Permanent("CredentialsInvalid"),
        ErrorKind::NotFound => Class::Permanent("NotFoundInProxmox"),
        ErrorKind::Conflict => Class::Permanent("ProxmoxConflict"),
        ErrorKind::Certificate => Class::Permanent("CertificateRejected"),
        // The same request would get the same answer: say so instead of re-sending it.
        ErrorKind::ResponseTooLarge => Class::Permanent("ProxmoxResponseTooLarge"),
        ErrorKind::InvalidInput => Class::Permanent("InvalidSpec"),
        _ => Class::Transient,
    }
}

/// The longest task-log line quoted in an error (a log line can be long: a whole command line).
const LOG_LINE_CHARS: usize = 300;

/// ` (task log: <line>)` for the last line of `log_tail` that says more than the exit status
/// itself (Proxmox's log ends with `TASK ERROR: <exit status>`), or nothing.
fn log_excerpt(exit: &str, log_tail: &[String]) -> String {
    let Some(line) = log_tail.iter().rev().map(|l| l.trim()).find(|l| {
        !l.is_empty() && !l.starts_with("TASK ERROR:") && !l.starts_with("TASK OK") && *l != exit
    }) else {
        return String::new();
    };
    let mut excerpt: String = line.chars().take(LOG_LINE_CHARS).collect();
    if line.chars().count() > LOG_LINE_CHARS {
        excerpt.push('…');
    }
    format!(" (task log: {excerpt})")
}

/// Texts of failed tasks that passing time can fix: locks held by someone else, a cluster
/// without quorum for a moment, a worker that died or lost its connection. Matched in lower
/// case.
const TRANSIENT_TASK_TEXTS: &[&str] = &[
    // `lock_file_full` (per-VM config flock, the storage's allocation flock):
    // `can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout`.
    "can't lock file",
    "got timeout",
    // pmxcfs locks: `cfs-lock 'storage-x' error: got lock request timeout`.
    "got lock request timeout",
    // `AbstractConfig.pm::check_lock`: `VM is locked (clone)`.
    "is locked (",
    "no quorum",
    "cluster not ready",
    // The worker died or its log cannot be read (pve-common `upid_read_status`).
    "interrupted by signal",
    "unexpected status",
    "unable to open file",
    "unable to get last line",
    // The controller's own tracker: the task is gone from the node's task list.
    "unknown task",
    "connection refused",
    "connection timed out",
    "connection reset",
    "broken pipe",
    "no route to host",
];

/// Texts of failed tasks that no retry can fix, with the condition reason for each: a text
/// matches when it contains every part (in lower case). Checked in this order.
const PERMANENT_TASK_TEXTS: &[(&[&str], &str)] = &[
    // LVM: `lvcreate 'pve/vm-100-disk-0' error:   Volume group "pve" has insufficient free
    // space (255 extents): 2560 required.`
    (&["insufficient free space"], "NoSpaceOnStorage"),
    // ZFS: `zfs error: cannot create 'rpool/data/vm-100-disk-0': out of space`.
    (&["out of space"], "NoSpaceOnStorage"),
    // ENOSPC from qemu-img or a file write on a directory/NFS storage.
    (&["no space left on device"], "NoSpaceOnStorage"),
    (&["disk quota exceeded"], "NoSpaceOnStorage"),
    // pve-sim's allocator.
    (&["does not have enough free space"], "NoSpaceOnStorage"),
    // pve-storage: `storage 'x' does not exist`, `storage 'x' is not available on node 'n'`,
    // `storage 'x' does not support vm images`.
    (&["storage '", "' does not exist"], "StorageUnusable"),
    (
        &["storage '", "is not available on node"],
        "StorageUnusable",
    ),
    (&["storage '", "does not support"], "StorageUnusable"),
    // pve-common `PVE::Network`: `bridge 'vmbr9' does not exist`.
    (&["bridge '", "does not exist"], "BridgeMissing"),
    // ENOMEM when QEMU allocates guest RAM: `kvm: cannot set up guest memory 'pc.ram': Cannot
    // allocate memory` (the exit status is then `start failed: QEMU exited with code 1`).
    (&["cannot allocate memory"], "NotEnoughMemory"),
    (&["out of memory"], "NotEnoughMemory"),
    (&["not enough memory"], "NotEnoughMemory"),
    // A volume the config names is gone: `Could not open '…': No such file or directory`.
    (
        &["could not open", "no such file or directory"],
        "VolumeMissing",
    ),
    // Spec or template problems that qemu-server finds inside the worker.
    (&["unsupported format"], "ProxmoxRejectedSpec"),
    (&["shrinking disks is not supported"], "ProxmoxRejectedSpec"),
    (&["you can't resize a cdrom"], "ProxmoxRejectedSpec"),
    (&["invalid bootorder"], "ProxmoxRejectedSpec"),
    (
        &["cloud-init drive is already attached"],
        "ProxmoxRejectedSpec",
    ),
    (&["if it's a template"], "ProxmoxRejectedSpec"),
    (&["only root can set"], "ProxmoxRejectedSpec"),
];

/// Classifies a failed Proxmox task by its exit status and, when that says nothing known (QEMU
/// `exited with code 1`), by the last lines of its log: a privilege Proxmox checked inside the
/// worker (naming the privilege and path where Proxmox does), a cause no retry can fix (with a
/// reason), or one that passes (lock contention, quorum, a dead worker). A text recognised as
/// neither is transient: it is sent again with backoff, as before.
pub fn classify_task_failure(exit: &str, log_tail: &[String]) -> Class {
    // `Permission check failed (/, Sys.Modify for modifying tag 'x')` inside a create worker
    // (PVE 9.2), `... (/storage/x, Datastore.AllocateSpace)` inside a resize worker.
    if let Some(at) = exit.find("Permission check failed")
        && let PveError::PermissionDenied {
            path, privileges, ..
        } = PveError::from_response(403, Some(&exit[at..]), b"")
    {
        return Class::Permission { privileges, path };
    }
    classify_task_text(exit)
        .or_else(|| {
            log_tail
                .iter()
                .rev()
                .find_map(|line| classify_task_text(line))
        })
        .unwrap_or(Class::Transient)
}

/// The class one text of a failed task names, if it names one.
fn classify_task_text(text: &str) -> Option<Class> {
    let lower = text.to_lowercase();
    if TRANSIENT_TASK_TEXTS.iter().any(|t| lower.contains(t)) {
        return Some(Class::Transient);
    }
    PERMANENT_TASK_TEXTS
        .iter()
        .find(|(parts, _)| parts.iter().all(|p| lower.contains(p)))
        .map(|(_, reason)| Class::Permanent(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(exit: &str, log: &[&str]) -> Class {
        let log: Vec<String> = log.iter().map(|l| l.to_string()).collect();
        classify_task_failure(exit, &log)
    }

    #[test]
    fn an_oversized_answer_and_a_value_the_client_refuses_are_permanent_not_retried() {
        let too_large = PveError::ResponseTooLarge {
            endpoint: "GET /cluster/resources".into(),
            status: 200,
            limit: 32 << 20,
        };
        assert_eq!(
            classify_pve(&too_large),
            Class::Permanent("ProxmoxResponseTooLarge")
        );
        let refused = PveError::invalid_input("node", "is not a node name");
        assert_eq!(classify_pve(&refused), Class::Permanent("InvalidSpec"));
    }

    #[test]
    fn real_task_exit_texts_are_classified_by_what_a_retry_can_fix() {
        let permanent = [
            (
                "unable to create VM 100 - lvcreate 'pve/vm-100-disk-0' error:   Volume group \"pve\" has insufficient free space (255 extents): 2560 required.",
                "NoSpaceOnStorage",
            ),
            (
                "unable to create VM 101 - zfs error: cannot create 'rpool/data/vm-101-disk-0': out of space",
                "NoSpaceOnStorage",
            ),
            (
                "clone failed: qemu-img: error while writing at byte 2147483648: No space left on device",
                "NoSpaceOnStorage",
            ),
            (
                "unable to create VM 102 - storage 'local-lvm' does not have enough free space (requested 100G, available 20G)",
                "NoSpaceOnStorage",
            ),
            (
                "unable to create VM 103 - storage 'fast' does not exist",
                "StorageUnusable",
            ),
            (
                "unable to create VM 104 - storage 'nfs' is not available on node 'pve2'",
                "StorageUnusable",
            ),
            ("bridge 'vmbr9' does not exist", "BridgeMissing"),
            (
                "unable to create VM 233 - unsupported format 'qcow2' at /usr/share/perl5/PVE/Storage/LVMPlugin.pm line 366.",
                "ProxmoxRejectedSpec",
            ),
            ("shrinking disks is not supported", "ProxmoxRejectedSpec"),
            (
                "you can't start a vm if it's a template",
                "ProxmoxRejectedSpec",
            ),
        ];
        for (exit, reason) in permanent {
            assert_eq!(class(exit, &[]), Class::Permanent(reason), "{exit}");
        }
        let transient = [
            "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
            "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-data-zfs' - got timeout",
            "unable to create VM 100 - cfs-lock 'storage-ceph' error: got lock request timeout",
            "VM is locked (clone)",
            "cluster not ready - no quorum?",
            "interrupted by signal",
            "unexpected status",
            "unable to open file - No such file or directory",
            "unknown task",
            "VM quit/powerdown failed - got timeout",
            // Not recognised: sent again with backoff, as every task failure was before.
            "something Proxmox has never said",
        ];
        for exit in transient {
            assert_eq!(class(exit, &[]), Class::Transient, "{exit}");
        }
    }

    #[test]
    fn the_log_tail_tells_why_qemu_exited() {
        assert_eq!(
            class(
                "start failed: QEMU exited with code 1",
                &[
                    "kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory",
                    "TASK ERROR: start failed: QEMU exited with code 1",
                ]
            ),
            Class::Permanent("NotEnoughMemory")
        );
        assert_eq!(
            class(
                "start failed: QEMU exited with code 1",
                &[
                    "kvm: -drive file=/dev/pve/vm-100-disk-0,if=none,id=drive-scsi0: Could not open '/dev/pve/vm-100-disk-0': No such file or directory"
                ]
            ),
            Class::Permanent("VolumeMissing")
        );
        assert_eq!(
            class("start failed: QEMU exited with code 1", &[]),
            Class::Transient,
            "without a known cause in the log, a QEMU exit is retried"
        );
    }

    #[test]
    fn a_privilege_checked_inside_the_worker_names_the_privilege_and_the_path() {
        assert_eq!(
            class(
                "unable to create VM 100 - Permission check failed (/, Sys.Modify for modifying tag 'x')",
                &[]
            ),
            Class::Permission {
                privileges: vec!["Sys.Modify".into()],
                path: Some("/".into()),
            }
        );
        assert_eq!(
            class(
                "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)",
                &[]
            ),
            Class::Permission {
                privileges: vec!["Datastore.AllocateSpace".into()],
                path: Some("/storage/local-lvm".into()),
            }
        );
    }

    #[test]
    fn a_failed_task_names_the_informative_log_line_once_and_short() {
        let error = ReconcileError::TaskFailed {
            action: "starting the VM (UPID:pve:00000001:00000001:00000001:qmstart:100:root@pam:)"
                .into(),
            upid: "UPID:pve:00000001:00000001:00000001:qmstart:100:root@pam:".into(),
            task_type: "qmstart".into(),
            exit: "start failed: QEMU exited with code 1".into(),
            log_tail: vec![
                format!("kvm: {}", "x".repeat(1000)),
                "TASK ERROR: start failed: QEMU exited with code 1".into(),
            ],
        };
        let text = error.to_string();
        assert!(text.contains("(task log: kvm: xxx"), "{text}");
        assert!(!text.contains("TASK ERROR"), "{text}");
        assert!(text.chars().count() < 500, "{text}");
        assert_eq!(error.reason(), "TaskFailed");
        assert!(!error.is_task_failed_for_good());
    }
}
