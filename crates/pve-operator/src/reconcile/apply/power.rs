//! Phases 5 and 6: the VM's power. Changes Proxmox keeps pending on a running VM are reported or
//! applied by a restart (`spec.pendingChanges`); then the VM is started or shut down as the spec
//! says.

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::api::qemu::ShutdownOptions;
use pve_client::api::vmconfig::VmConfigView;
use pve_operator_api::{PendingChangePolicy, Phase, PowerState};

use super::super::error::ReconcileError;
use super::super::status::{self, types};
use super::super::task_kind::TaskKind;
use super::Pass;
use crate::privileges::{self, Step};
use crate::proxmox::{Handoff, VmEntry};

impl Pass<'_> {
    /// Whether the VM runs. The inventory may lag behind (a start sent just before a controller
    /// restart, or one this controller saw end after the last read): before acting on the power
    /// state, and before calling it as specified, Proxmox is asked for the VM's current state
    /// whenever the inventory disagrees with the spec or with what this controller last saw
    /// (status.phase). Trusting a stale "stopped" that happens to match a new
    /// `powerState: Stopped` would report a running VM as Ready and never shut it down.
    pub(super) async fn is_running(&self, vm: &VmEntry) -> Result<bool, ReconcileError> {
        // The task that just succeeded left the VM in a known state (a create: stopped; a
        // start: running), fresher than any inventory read.
        if let Some(handoff) = self.handoff_for(vm) {
            return Ok(handoff.vm.is_running());
        }
        if inventory_power_will_do(vm.is_running(), self.wants_running(), self.status.phase) {
            return Ok(vm.is_running());
        }
        Ok(self
            .conn
            .pve
            .qemu_status(&vm.node, vm.vmid)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "reading the status of VM {}",
                vm.vmid
            )))?
            .is_running())
    }

    /// The hand-off of the task that just succeeded, when it describes `vm`.
    pub(super) fn handoff_for(&self, vm: &VmEntry) -> Option<&Handoff> {
        self.handoff
            .as_ref()
            .filter(|h| h.is_for(Some(vm.vmid), Some(vm.node.as_str())))
    }

    /// Step 5: changes that need a restart. Only a running VM keeps changes pending; a stopped
    /// one takes them at once. `Some` ends the pass (a restart begins).
    pub(super) async fn restart_for_pending(
        &mut self,
        vm: &VmEntry,
        running: bool,
    ) -> Result<Option<Action>, ReconcileError> {
        // A config handed off with a start was read while the VM was stopped (nothing pending)
        // and nothing changed it since.
        let known_clean = self.handoff_for(vm).is_some_and(|h| h.config.is_some());
        let pending = if running && !known_clean {
            self.conn
                .pve
                .qemu_pending(&vm.node, vm.vmid)
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "reading the pending changes of VM {}",
                    vm.vmid
                )))?
        } else {
            Vec::new()
        };
        let pending_keys: Vec<String> = pending
            .iter()
            .filter(|p| p.pending.is_some() || p.delete.is_some())
            .map(|p| p.key.clone())
            .collect();
        if !running || pending_keys.is_empty() {
            status::clear_condition(self.status, types::RESTART_REQUIRED);
            return Ok(None);
        }
        let keys = pending_keys.join(", ");
        match self.request.spec.pending_changes {
            PendingChangePolicy::Report => {
                self.condition(
                    types::RESTART_REQUIRED,
                    true,
                    "PendingChanges",
                    format!("restart VM {} to apply: {keys}", vm.vmid),
                );
                Ok(None)
            }
            PendingChangePolicy::Restart => {
                let note = format!("VM {} restarts to apply: {keys}", vm.vmid);
                self.event(EventType::Normal, "Restarting", &note).await;
                self.shut_down(vm, "to apply pending changes")
                    .await
                    .map(Some)
            }
        }
    }

    /// Step 6: starts or shuts down the VM when its power differs from the spec. `Some` ends the
    /// pass (a task runs).
    pub(super) async fn power(
        &mut self,
        vm: &VmEntry,
        running: bool,
        unchanged_config: Option<VmConfigView>,
    ) -> Result<Option<Action>, ReconcileError> {
        match (self.request.spec.power_state, running) {
            (PowerState::Running, false) => {
                privileges::require(self.conn, &self.request.spec, Step::Power).await?;
                let slot = self.reserve_slot(&vm.node)?;
                let upid = self
                    .conn
                    .pve
                    .qemu_start(&vm.node, vm.vmid)
                    .await
                    .map_err(ReconcileError::proxmox(format!("starting VM {}", vm.vmid)))?;
                let started = Handoff::started(vm, unchanged_config);
                (self.conn.handoffs).leave(&self.scope.marker.uid, &upid, started);
                let note = format!("starting VM {}", vm.vmid);
                self.event(EventType::Normal, "Starting", &note).await;
                self.condition(types::POWERED, false, "Starting", "the VM is starting");
                Ok(Some(self.start_task(upid, TaskKind::Start, slot)))
            }
            (PowerState::Stopped, true) => {
                let note = format!("shutting down VM {}", vm.vmid);
                self.event(EventType::Normal, "ShuttingDown", &note).await;
                self.shut_down(vm, "as specified").await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Asks Proxmox for a clean shutdown of `vm` (forced after 120 s) and records the task;
    /// `why` completes the error message.
    async fn shut_down(&mut self, vm: &VmEntry, why: &str) -> Result<Action, ReconcileError> {
        privileges::require(self.conn, &self.request.spec, Step::Power).await?;
        let slot = self.reserve_slot(&vm.node)?;
        let options = ShutdownOptions {
            timeout: Some(120),
            force_stop: Some(true),
        };
        let upid = self
            .conn
            .pve
            .qemu_shutdown(&vm.node, vm.vmid, &options)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "shutting down VM {} {why}",
                vm.vmid
            )))?;
        Ok(self.start_task(upid, TaskKind::Shutdown, slot))
    }
}

/// Whether the inventory's power state (`inventory_running`) may be taken as the VM's without
/// asking Proxmox: only when it agrees with the spec and with what the controller last saw
/// (`last_phase`, from status).
fn inventory_power_will_do(
    inventory_running: bool,
    wants_running: bool,
    last_phase: Option<Phase>,
) -> bool {
    let last_seen_running = match last_phase {
        Some(Phase::Running) => Some(true),
        Some(Phase::Stopped) => Some(false),
        _ => None,
    };
    inventory_running == wants_running
        && last_seen_running.is_none_or(|seen| seen == inventory_running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventorys_power_state_is_checked_with_proxmox_unless_spec_and_last_sight_agree() {
        // A stale "stopped" read before the VM's start ended, and a spec just changed to
        // Stopped: the controller last saw it running, so it asks (the drift kill run's case).
        assert!(!inventory_power_will_do(false, false, Some(Phase::Running)));
        assert!(!inventory_power_will_do(true, true, Some(Phase::Stopped)));
        // Disagreeing with the spec: always asked before acting.
        assert!(!inventory_power_will_do(false, true, Some(Phase::Stopped)));
        assert!(!inventory_power_will_do(true, false, None));
        // Everything agrees, or nothing was seen yet: no extra read.
        assert!(inventory_power_will_do(true, true, Some(Phase::Running)));
        assert!(inventory_power_will_do(false, false, Some(Phase::Stopped)));
        assert!(inventory_power_will_do(
            false,
            false,
            Some(Phase::Provisioning)
        ));
        assert!(inventory_power_will_do(true, true, None));
    }
}
