//! Deleting a MachineRequest (docs/design.md principle 6): with `deletionPolicy: Delete`, stop the
//! VM, destroy it with its disks, confirm it is gone, then let the finalizer go; with `Retain`,
//! leave the VM and remove only the controller's marker. A VM that is not ours (without the full
//! marker) is never touched, and the finalizer goes only once a direct read confirms that the
//! request's VM is gone.

use super::task_kind::TaskKind;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::api::qemu::{DeleteOptions, StopOptions};
use pve_client::api::vmconfig::VmConfigView;
use pve_operator_api::{DeletionPolicy, Phase};

use super::apply::{RecordedTask, recorded_task};
use super::error::ReconcileError;
use super::ownership::{self, OwnershipConflict, Verdict};
use super::pass::Pass;
use crate::privileges::{self, Step};
use crate::proxmox::inventory::Marked;
use crate::proxmox::{ClusterRuntime, Snapshot, VmEntry};
use crate::vmspec;

impl Pass<'_> {
    /// One pass of the deletion path. `Ok` means the VM is gone (or released) and the finalizer
    /// may be removed; [`ReconcileError::DeletionInProgress`] means a task runs and the reconcile
    /// comes back when it ends. Each pass waits for a recorded task, finds the request's own VM,
    /// then releases it (`Retain`) or stops and destroys it (`Delete`), one task per pass.
    pub(super) async fn delete(mut self) -> Result<Action, ReconcileError> {
        let (request, scope, conn) = (self.request, self.scope, self.conn);
        let marker = scope.marker;
        self.status.phase = Some(Phase::Deleting);
        // The inventory triggers the next pass when the VM changes in Proxmox (a destroy removes it,
        // a create completes its marker), also while a task holds it that this controller does not
        // track (one sent just before a restart, its UPID never recorded), instead of the error
        // policy's 30 s.
        conn.inventory
            .watch(&marker.uid, scope.object_ref.clone(), None);

        if let RecordedTask::Running = recorded_task(self.status, conn, scope)? {
            let upid = self
                .status
                .current_task
                .as_ref()
                .map(|t| t.upid.as_str())
                .unwrap_or_default();
            return Err(ReconcileError::DeletionInProgress(format!(
                "waiting for {upid}"
            )));
        }

        // Only a fresh read can confirm that the VM is gone.
        let snapshot = conn
            .inventory
            .fresh_snapshot()
            .await
            .map_err(ReconcileError::proxmox("reading /cluster/resources"))?;
        let Some((vm, config)) = self.find_vm_to_delete(&snapshot).await? else {
            conn.inventory.unwatch(&marker.uid);
            self.event(
                EventType::Normal,
                "Deleted",
                "no VM of this request is left in Proxmox; releasing the MachineRequest",
            )
            .await;
            return Ok(Action::await_change());
        };
        if let Some(lock) = &vm.lock {
            return Err(ReconcileError::DeletionInProgress(format!(
                "VM {} is locked ({lock}); waiting",
                vm.vmid
            )));
        }

        if request.spec.deletion_policy == DeletionPolicy::Retain {
            // The config read to verify ownership is the one the marker is removed from.
            let context = format!("removing the controller's marker from VM {}", vm.vmid);
            let update = vmspec::release_marker(marker, &config)
                .and_then(|plan| plan.update_over(&config.digest))
                .map_err(ReconcileError::proxmox(context.clone()))?;
            conn.pve
                .qemu_update_sync(&vm.node, vm.vmid, &update)
                .await
                .map_err(ReconcileError::proxmox(context))?;
            conn.inventory.unwatch(&marker.uid);
            let note = format!(
                "VM {} is kept (deletionPolicy: Retain); the controller's marker was removed",
                vm.vmid
            );
            self.event(EventType::Normal, "Retained", &note).await;
            return Ok(Action::await_change());
        }

        let pve = &conn.pve;
        let slot = self.reserve_slot(&vm.node)?;
        let (upid, kind, message) = if vm.is_running() {
            privileges::require(conn, &request.spec, Step::Power).await?;
            let upid = pve
                .qemu_stop(&vm.node, vm.vmid, &StopOptions::default())
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "stopping VM {} for deletion",
                    vm.vmid
                )))?;
            (
                upid,
                TaskKind::Stop,
                format!("stopping VM {} for deletion", vm.vmid),
            )
        } else {
            privileges::require(conn, &request.spec, Step::Delete).await?;
            let upid = pve
                .qemu_delete(&vm.node, vm.vmid, DeleteOptions::default())
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "destroying VM {}",
                    vm.vmid
                )))?;
            (
                upid,
                TaskKind::Destroy,
                format!("destroying VM {} and its disks", vm.vmid),
            )
        };
        self.event(EventType::Normal, "Deleting", &message).await;
        self.record_task(&upid, kind, slot);
        Err(ReconcileError::DeletionInProgress(message))
    }

    /// The request's VM for deletion, with the config read to verify it; `None` once no VM of the
    /// request is left, which needs a confirmation. A VM with the uid tag, or at the recorded
    /// VMID, is the request's only with the full marker (or the clone window at the recorded
    /// VMID); any other VM there is left alone, with a Warning Event saying so. A VM missing from
    /// the fresh inventory is read directly at the recorded VMID: only a 404 there confirms that it
    /// is gone (a 403 or any other error keeps the finalizer, and the condition says why). Several
    /// VMs with the uid tag keep it too, and none of them is touched.
    async fn find_vm_to_delete(
        &self,
        snapshot: &Snapshot,
    ) -> Result<Option<(VmEntry, VmConfigView)>, ReconcileError> {
        let (conn, status) = (self.conn, &*self.status);
        let marker = self.scope.marker;
        let recorded = status.vmid;
        let tagged = match snapshot.find_marked(marker) {
            Marked::Several(vmids) => {
                return Err(OwnershipConflict::duplicates(marker, vmids).into());
            }
            Marked::One(vm) if Some(vm.vmid) != recorded => Some(vm.clone()),
            Marked::One(_) | Marked::None => None,
        };
        if let Some(vm) = tagged {
            let vmid = vm.vmid;
            match ownership::verify(conn, marker, vm, recorded).await? {
                Verdict::Ours(vm, config) => return Ok(Some((vm, config))),
                Verdict::Undecided(why) => return Err(ReconcileError::DeletionInProgress(why)),
                Verdict::Partial(mismatch) => {
                    self.left_alone(vmid, &mismatch.to_string()).await;
                }
                // Its tag is gone since the read; the recorded VMID decides.
                Verdict::NotOurs { .. } => {}
            }
        }
        let Some(vmid) = recorded else {
            return Ok(None);
        };
        let vm = match snapshot.vms.get(&vmid) {
            Some(vm) => vm.clone(),
            None => match confirm_gone(conn, status.node.as_deref(), vmid).await? {
                Some(vm) => vm,
                None => return Ok(None),
            },
        };
        match ownership::verify(conn, marker, vm, recorded).await? {
            Verdict::Ours(vm, config) => Ok(Some((vm, config))),
            Verdict::Undecided(why) => Err(ReconcileError::DeletionInProgress(why)),
            Verdict::Partial(mismatch) => {
                self.left_alone(vmid, &mismatch.to_string()).await;
                Ok(None)
            }
            Verdict::NotOurs { template } => {
                let what = if template {
                    "is a template, and a template is never a request's VM"
                } else {
                    "does not carry this request's marker"
                };
                self.left_alone(vmid, &format!("(recorded in status.vmid) {what}"))
                    .await;
                Ok(None)
            }
        }
    }

    /// Tells the user that VM `vmid` looked like the request's but is not, and is left alone
    /// (an Event reason of its own: Events with one reason are aggregated, keeping the first
    /// message).
    async fn left_alone(&self, vmid: u32, what: &str) {
        let note = format!(
            "VM {vmid} {what}, so it is not this request's VM: it is left alone (not stopped, not deleted, marker not removed)"
        );
        self.event(EventType::Warning, "VmLeftAlone", &note).await;
    }
}

/// Confirms by a direct read that the recorded VM, missing from a fresh inventory, is gone:
/// `None` when Proxmox says so (404 on the recorded node; the inventory already says it is
/// nowhere else the credentials can see), the VM when it is there after all. A 403 is not an
/// answer (Proxmox checks the privilege before it looks for the VM, and a VM that left its pool
/// by being destroyed takes the pool's privileges with it): then `/cluster/nextid`, which needs
/// no privilege, says whether the VMID is taken at all. A taken VMID the credentials cannot see,
/// or any other error, keeps the finalizer.
async fn confirm_gone(
    conn: &ClusterRuntime,
    node: Option<&str>,
    vmid: u32,
) -> Result<Option<VmEntry>, ReconcileError> {
    let vmid_free = async || -> Result<Option<VmEntry>, ReconcileError> {
        let free = conn.pve.vmid_is_free(vmid).await.map_err(ReconcileError::proxmox(format!(
            "confirming that VM {vmid} (status.vmid) is gone before releasing the MachineRequest"
        )))?;
        if free {
            Ok(None)
        } else {
            Err(ReconcileError::InvisibleVm(vmid))
        }
    };
    let Some(node) = node else {
        // No node recorded: Proxmox can still say whether the VMID is taken at all.
        return vmid_free().await;
    };
    let context = ReconcileError::proxmox(format!(
        "confirming that VM {vmid} (status.vmid), missing from the inventory, is gone from node {node}; the MachineRequest keeps its finalizer until Proxmox confirms it"
    ));
    match ownership::status_entry(conn, node, vmid).await {
        // Free: gone. Taken (or not known): the refusal stands, naming the privilege.
        Err(error) if error.kind() == pve_client::ErrorKind::PermissionDenied => {
            match vmid_free().await {
                Ok(None) => Ok(None),
                _ => Err(context(error)),
            }
        }
        result => result.map_err(context),
    }
}
