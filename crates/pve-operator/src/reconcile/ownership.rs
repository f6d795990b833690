//! Telling a request's VM from everyone else's (docs/design.md principle 2), for the apply and the
//! deletion path alike: a VM is the request's only with the full marker (or in the clone window
//! at the recorded VMID), never as a template, and never while another VM carries its uid tag.

use pve_client::api::qemu::QemuStatus;
use pve_client::api::vmconfig::VmConfigView;
use pve_client::{ErrorKind, PveError};

use super::error::ReconcileError;
use crate::proxmox::{ClusterRuntime, VmEntry};
use crate::vmspec::Marker;
use crate::vmspec::{MarkerMismatch, Ownership};

/// Why the controller touches none of the VMs that look like a request's. The messages name
/// VMIDs only, never another request's object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipConflict {
    /// Several VMs carry the request's uid tag.
    #[error(
        "VMs {} all carry this request's uid tag ({tag}), so none of them is treated as this request's VM: none is updated, started, stopped or deleted, and no VM is created, until only one of them carries the tag (remove the tag from the others in Proxmox, or delete them)",
        list(.vmids)
    )]
    DuplicateVms {
        /// Their VMIDs, ascending.
        vmids: Vec<u32>,
        /// The request's uid tag.
        tag: String,
    },
    /// A VM carries part of the request's marker only.
    #[error(
        "VM {vmid} {mismatch}, so it is not treated as this request's VM: it is not touched, and no VM is created beside it while it carries part of this request's marker. If VM {vmid} is this request's, complete its marker in Proxmox (uid tag, description line, SMBIOS uuid); if it is not, remove this request's marker from it, or delete it"
    )]
    MarkerMismatch {
        /// The VM.
        vmid: u32,
        /// What it lacks or contradicts.
        mismatch: MarkerMismatch,
    },
}

impl OwnershipConflict {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            OwnershipConflict::DuplicateVms { .. } => "DuplicateVms",
            OwnershipConflict::MarkerMismatch { .. } => "MarkerMismatch",
        }
    }

    /// Several VMs carry `marker`'s uid tag.
    pub fn duplicates(marker: &Marker, vmids: Vec<u32>) -> Self {
        OwnershipConflict::DuplicateVms {
            vmids,
            tag: marker.uid_tag(),
        }
    }
}

fn list(vmids: &[u32]) -> String {
    let ids: Vec<String> = vmids.iter().map(u32::to_string).collect();
    ids.join(", ")
}

/// What one VM is to a request, after reading its config.
pub(super) enum Verdict {
    /// The request's VM, with the config read to tell (the caller reuses it instead of
    /// reading it again) and its lock as that config says.
    Ours(VmEntry, VmConfigView),
    /// Locked without the full marker: a create or clone may still be writing it (Proxmox
    /// writes the config only when the task's worker runs). Neither touched nor replaced.
    Undecided(String),
    /// Part of the marker only: never touched.
    Partial(MarkerMismatch),
    /// Someone else's: a template, or no part of the marker.
    NotOurs {
        /// Whether it is a template.
        template: bool,
    },
}

/// Reads `vm`'s config and judges it against `marker` (one Proxmox call; none for a template
/// the inventory already shows as one). `recorded` is the request's `status.vmid`.
pub(super) async fn verify(
    conn: &ClusterRuntime,
    marker: &Marker,
    mut vm: VmEntry,
    recorded: Option<u32>,
) -> Result<Verdict, ReconcileError> {
    if vm.template {
        return Ok(Verdict::NotOurs { template: true });
    }
    let config = match conn.pve.qemu_config(&vm.node, vm.vmid).await {
        Ok(config) => config,
        // Without VM.Audit the controller cannot tell whose VM it is (the VM its own create
        // made, most likely): say so, as for a VM it cannot see at all.
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return Err(ReconcileError::InvisibleVm(vm.vmid));
        }
        Err(error) => {
            return Err(ReconcileError::Proxmox {
                action: format!(
                    "reading the config of VM {} to verify that it is this request's",
                    vm.vmid
                ),
                source: error,
            });
        }
    };
    // The config just read is fresher than the inventory: for our own VM its lock is the one
    // that counts (a stale `lock: clone` of the inventory would hold a finished clone back for a
    // pass). Before ownership is decided, either lock is reason enough to wait.
    let config_lock = config.lock().map(str::to_owned);
    let lock = config_lock.clone().or(vm.lock.take());
    let ownership = marker.ownership(&config, recorded == Some(vm.vmid));
    Ok(match ownership {
        Ownership::Full | Ownership::CloneWindow => {
            vm.lock = config_lock;
            Verdict::Ours(vm, config)
        }
        Ownership::Template => Verdict::NotOurs { template: true },
        Ownership::Partial(_) | Ownership::Absent if lock.is_some() => Verdict::Undecided(format!(
            "VM {} is locked ({}) and does not carry this request's full marker yet; waiting for the lock to clear before deciding whether it is this request's",
            vm.vmid,
            lock.unwrap_or_default()
        )),
        Ownership::Partial(mismatch) => Verdict::Partial(mismatch),
        Ownership::Absent => Verdict::NotOurs { template: false },
    })
}

/// The VM `vmid` on `node` as the inventory would list it, read from its own status; `None`
/// when Proxmox says it is not there (404).
pub(super) async fn status_entry(
    conn: &ClusterRuntime,
    node: &str,
    vmid: u32,
) -> Result<Option<VmEntry>, PveError> {
    match conn.pve.qemu_status(node, vmid).await {
        Ok(current) => Ok(Some(entry_of(node, vmid, current))),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// [`status_entry`] for the apply path: a VM the credentials cannot see (403) is
/// [`ReconcileError::InvisibleVm`].
pub(super) async fn read_one_vm(
    conn: &ClusterRuntime,
    node: &str,
    vmid: u32,
) -> Result<Option<VmEntry>, ReconcileError> {
    match status_entry(conn, node, vmid).await {
        Ok(entry) => Ok(entry),
        // Without VM.Audit the VM the controller created is invisible to it: say so rather than
        // pass on a bare 403 (and never create another one).
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            Err(ReconcileError::InvisibleVm(vmid))
        }
        Err(error) => Err(ReconcileError::Proxmox {
            action: format!("reading the status of VM {vmid} on {node}"),
            source: error,
        }),
    }
}

/// An inventory entry built from a VM's status.
fn entry_of(node: &str, vmid: u32, current: QemuStatus) -> VmEntry {
    VmEntry {
        vmid,
        node: node.to_string(),
        name: current.name.unwrap_or_default(),
        status: current.status,
        tags: current
            .tags
            .as_deref()
            .unwrap_or_default()
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        lock: current.lock,
        template: current.template.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::error::Class;

    #[test]
    fn conflicts_name_the_vmids_and_the_missing_part_and_are_permanent() {
        let marker = Marker::new("0b9b1a2c-5d3e-4c8e-9f00-123456789abc", "team-a", "web");
        let duplicates = OwnershipConflict::duplicates(&marker, vec![101, 205]);
        let text = duplicates.to_string();
        assert!(
            text.starts_with(
                "VMs 101, 205 all carry this request's uid tag (mr-0b9b1a2c-5d3e-4c8e-9f00-123456789abc)"
            ),
            "{text}"
        );
        let error = ReconcileError::from(duplicates);
        assert_eq!(error.class(), Class::Permanent("DuplicateVms"));
        assert_eq!(error.reason(), "DuplicateVms");

        let partial = OwnershipConflict::MarkerMismatch {
            vmid: 7,
            mismatch: MarkerMismatch::TagWithoutLine,
        };
        let text = partial.to_string();
        assert!(
            text.starts_with(
                "VM 7 carries this request's uid tag but not its description marker line, so it is not treated as this request's VM"
            ),
            "{text}"
        );
        assert!(!text.contains("team-a"), "names no object: {text}");
        assert_eq!(ReconcileError::from(partial).reason(), "MarkerMismatch");
    }
}
