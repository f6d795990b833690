//! Phase 4: config drift. The plan made on the config read when the VM's ownership was verified
//! is sent as one config update (a task when Proxmox backgrounds it), then disks are grown.

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::api::qemu::DiskSize;
use pve_client::api::vmconfig::VmConfigView;

use super::super::error::ReconcileError;
use super::super::status::types;
use super::super::task_kind::TaskKind;
use super::Pass;
use crate::proxmox::VmEntry;
use crate::vmspec::UpdatePlan;

impl Pass<'_> {
    /// Reports the plan's conflicts, sends its config update and grows its disks. `Some` ends
    /// the pass (the update runs as a task).
    pub(super) async fn correct_drift(
        &mut self,
        vm: &VmEntry,
        config: &VmConfigView,
        plan: &UpdatePlan,
    ) -> Result<Option<Action>, ReconcileError> {
        if !plan.conflicts.is_empty() {
            let conflicts = plan.conflicts.join("; ");
            self.condition(types::READY, false, "ConfigConflict", conflicts.clone());
            self.event(EventType::Warning, "ConfigConflict", &conflicts)
                .await;
        }
        if let Some(action) = self.update_config(vm, config, plan).await? {
            return Ok(Some(action));
        }
        // Disks grow after the config update (a resize changes the digest the update was
        // planned on).
        self.grow_disks(vm, plan).await?;
        Ok(None)
    }

    /// Sends the plan's keys to set and delete, if any, over the digest they were planned on.
    async fn update_config(
        &mut self,
        vm: &VmEntry,
        config: &VmConfigView,
        plan: &UpdatePlan,
    ) -> Result<Option<Action>, ReconcileError> {
        if !plan.has_config_changes() {
            return Ok(None);
        }
        let keys = plan.changed_keys();
        let update = plan
            .update_over(&config.digest)
            .map_err(ReconcileError::proxmox(format!(
                "updating the config of VM {}",
                vm.vmid
            )))?;
        let slot = self.reserve_slot(&vm.node)?;
        let upid = self
            .conn
            .pve
            .qemu_update_async(&vm.node, vm.vmid, &update)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "updating the config of VM {} ({})",
                vm.vmid,
                keys.join(", ")
            )))?;
        let note = format!("VM {}: {}", vm.vmid, keys.join(", "));
        self.event(EventType::Normal, "ConfigUpdated", &note).await;
        Ok(upid.map(|upid| self.start_task(upid, TaskKind::Config, slot)))
    }

    /// Grows the disks the plan says are smaller than the spec.
    async fn grow_disks(&self, vm: &VmEntry, plan: &UpdatePlan) -> Result<(), ReconcileError> {
        for (slot, size_gib) in &plan.resizes {
            self.conn
                .pve
                .qemu_resize(
                    &vm.node,
                    vm.vmid,
                    *slot,
                    DiskSize::AbsoluteGib(*size_gib),
                    None,
                )
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "growing disk {slot} of VM {} to {size_gib}G",
                    vm.vmid
                )))?;
            let note = format!("disk {slot} of VM {} grown to {size_gib} GiB", vm.vmid);
            self.event(EventType::Normal, "DiskGrown", &note).await;
        }
        Ok(())
    }
}
