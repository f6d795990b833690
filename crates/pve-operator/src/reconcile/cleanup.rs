//! Deleting a MachineRequest (DESIGN principle 6): with `deletionPolicy: Delete`, stop the VM,
//! destroy it with its disks, confirm it is gone, then let the finalizer go; with `Retain`, leave
//! the VM and remove only the controller's marker. A VM that is not ours is never touched.

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::api::qemu::{ConfigUpdate, DeleteOptions, StopOptions};
use pve_operator_api::{DeletionPolicy, MachineRequest, MachineRequestStatus, Phase, TaskRef};

use super::apply::{RecordedTask, recorded_task};
use super::error::ReconcileError;
use super::{Context, RequestScope};
use crate::privileges::{self, Step};
use crate::proxmox::Connection;
use crate::vmspec;

/// One pass of the deletion path. `Ok` means the VM is gone (or released) and the finalizer may
/// be removed; [`ReconcileError::DeletionInProgress`] means a task runs and the reconcile comes
/// back when it ends.
pub async fn cleanup(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    conn: &Connection,
    status: &mut MachineRequestStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let marker = scope.marker;
    status.phase = Some(Phase::Deleting);

    if let RecordedTask::Running = recorded_task(status, conn, scope)? {
        let upid = status
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
    let vm = match snapshot.find_marked(marker) {
        Some(vm) => Some(vm.clone()),
        // Untagged but recorded: ours only if its config carries the marker.
        None => match status.vmid.and_then(|id| snapshot.vms.get(&id)) {
            Some(vm) => {
                let config = conn.pve.qemu_config(&vm.node, vm.vmid).await.map_err(
                    ReconcileError::proxmox(format!("reading the config of VM {}", vm.vmid)),
                )?;
                if marker.is_in_config(&config) {
                    Some(vm.clone())
                } else if let Some(lock) = config.lock().or(vm.lock.as_deref()) {
                    // A create or clone of ours may still hold the lock before writing the
                    // marker: releasing now could orphan the VM it is about to finish.
                    return Err(ReconcileError::DeletionInProgress(format!(
                        "VM {} is locked ({lock}) and carries no marker yet; waiting before deciding whether it is ours",
                        vm.vmid
                    )));
                } else {
                    None
                }
            }
            None => None,
        },
    };
    let Some(vm) = vm else {
        conn.inventory.unwatch(&marker.uid);
        scope
            .event(
                ctx,
                EventType::Normal,
                "Deleted",
                "the VM is gone; releasing the MachineRequest",
            )
            .await;
        return Ok(Action::await_change());
    };
    if vm.lock.is_some() {
        return Err(ReconcileError::DeletionInProgress(format!(
            "VM {} is locked; waiting",
            vm.vmid
        )));
    }

    if request.spec.deletion_policy == DeletionPolicy::Retain {
        let config =
            conn.pve
                .qemu_config(&vm.node, vm.vmid)
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "reading the config of VM {}",
                    vm.vmid
                )))?;
        let plan = vmspec::release_marker(marker, &config);
        let update = ConfigUpdate {
            delete: plan.delete.clone(),
            digest: Some(config.digest.clone()).filter(|d| !d.is_empty()),
            revert: Vec::new(),
        };
        conn.pve
            .qemu_update_sync(&vm.node, vm.vmid, &plan.config, &update)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "removing the controller's marker from VM {}",
                vm.vmid
            )))?;
        conn.inventory.unwatch(&marker.uid);
        scope
            .event(
                ctx,
                EventType::Normal,
                "Retained",
                &format!(
                    "VM {} is kept (deletionPolicy: Retain); the controller's marker was removed",
                    vm.vmid
                ),
            )
            .await;
        return Ok(Action::await_change());
    }

    let pve = &conn.pve;
    let slot = conn
        .tasks
        .reserve(&vm.node)
        .ok_or_else(|| super::apply::node_busy(&vm.node))?;
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
            "qmstop",
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
            "qmdestroy",
            format!("destroying VM {} and its disks", vm.vmid),
        )
    };
    scope
        .event(ctx, EventType::Normal, "Deleting", &message)
        .await;
    conn.tasks
        .track_with(&upid, scope.object_ref.clone(), Some(slot));
    status.current_task = Some(TaskRef {
        upid: upid.to_string(),
        task_type: kind.to_string(),
    });
    Err(ReconcileError::DeletionInProgress(message))
}
