//! Every failure of a reconcile, classified (DESIGN principle 5): transient ones back off and
//! retry; permanent ones become a condition with a reason and wait for a change; permission
//! errors name the privilege and the ACL path.

use pve_client::{ErrorKind, PveError};

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
    #[error("{action} failed in Proxmox: {exit}{log}")]
    TaskFailed {
        /// What the task did.
        action: String,
        /// Its exit status.
        exit: String,
        /// The end of its log, if any.
        log: String,
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
            ReconcileError::TaskFailed { .. } => Class::Transient,
            ReconcileError::Connection(error) if matches!(**error, ConnectionError::Kube(_)) => {
                Class::Transient
            }
            ReconcileError::Connection(_) => Class::Permanent("ClusterUnavailable"),
            ReconcileError::Spec(_) => Class::Permanent("InvalidSpec"),
            ReconcileError::Placement(_) => Class::Permanent("NoSuitableNode"),
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
        }
    }

    /// Whether this is a write refused because the object changed since it was read (HTTP 409
    /// on a `resourceVersion` precondition): the reconcile started from a stale copy and is
    /// simply done again from a fresh one. Not a failure to report.
    pub fn is_stale_write(&self) -> bool {
        matches!(self, ReconcileError::Kube(kube::Error::Api(status)) if status.is_conflict())
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
        _ => Class::Transient,
    }
}
