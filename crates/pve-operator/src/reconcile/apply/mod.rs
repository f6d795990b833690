//! Bringing a VM to what its MachineRequest says: find it (or create it), correct its config and
//! power state, and tell the story in status. Every Proxmox task is recorded in status and handed
//! to the cluster's task tracker; a reconcile never waits for one.
//!
//! One pass walks the phases in order, each in its own module and each a method on `Pass`:
//! `task` (a task in flight or failed for good), `find` (the request's own VM, by marker),
//! `create` (VMID, node and the create or clone call), `drift` (config update and disk
//! growth), `power` (pending changes, start and shutdown) and `addresses` (the guest
//! agent's IPs). A phase either hands the pass on or ends it with an [`Action`]. `Pass` itself
//! (shared with the deletion path) is in `reconcile/pass.rs`.

mod addresses;
mod create;
mod drift;
mod find;
mod images;
mod power;
mod task;

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use pve_operator_api::{MachineRequest, Phase, PowerState};

use super::error::ReconcileError;
use super::pass::Pass;
use super::status::{is_true, types};
use super::task_kind::describe_task;
use crate::vmspec;
use find::Found;

pub(super) use task::{RecordedTask, record_failed_task, recorded_task};

/// How long to wait before looking again while something runs in Proxmox; the task tracker and
/// the inventory usually trigger the reconcile much earlier.
pub(super) const WAIT: Duration = Duration::from_secs(30);

/// How soon to ask a guest agent again that did not answer (the guest is still booting).
const AGENT_RETRY: Duration = Duration::from_secs(5);

impl Pass<'_> {
    /// One pass of the apply path, its phases in order. Changes `status` in place; the caller
    /// writes it.
    pub(in crate::reconcile) async fn apply(mut self) -> Result<Action, ReconcileError> {
        // 1. A task in flight: nothing to do until the tracker says it ended. A step that failed
        // for good is not sent again (nor anything else) until the spec or the retry annotation
        // changes.
        if let Some(action) = self.settle_recorded_task().await? {
            return Ok(action);
        }

        // What the request's identity and cluster allow, before anything is touched or made.
        self.scope.policy.check_spec(&self.request.spec)?;
        if let Some(vmid) = self.status.vmid {
            self.scope.policy.check_recorded_vmid(vmid)?;
        }
        // The images it uses (a request whose images are not known yet waits), then the desired
        // VM, built and run through the client's encoders once for the whole pass.
        let images = match self.images(false).await {
            Ok(images) => images,
            Err(done) => return done,
        };
        let desired = vmspec::Desired::with_images(
            &self.request.spec,
            self.scope.marker,
            &self.scope.vm_name,
            &images.volumes,
        )?;

        // 2. Find the VM, by our uid tag or the recorded VMID, verifying that it carries our full
        // marker (the config read to tell is step 4's).
        let (vm, config) = match self.find_own_vm().await? {
            Found::Ours(vm, config) => (vm, config),
            Found::Nothing(snapshot) => return self.create(&desired, snapshot).await,
            Found::Undecided(why) => {
                self.status.phase = Some(Phase::Provisioning);
                self.condition(types::READY, false, "VerifyingOwnership", why);
                return Ok(Action::requeue(Duration::from_secs(2)));
            }
        };

        // 3. The VM exists and is ours.
        self.record_found(&vm).await;
        if let Some(lock) = &vm.lock {
            self.status.phase = Some(Phase::Provisioning);
            self.condition(
                types::READY,
                false,
                "VmLocked",
                format!("VM {} is locked ({lock}) in Proxmox; waiting", vm.vmid),
            );
            return Ok(Action::requeue(Duration::from_secs(5)));
        }

        // 4. Config drift, planned on the config read when the VM's ownership was verified.
        let plan = desired.plan_update(&config)?;
        self.hand_config_on(&vm, &config, &plan);
        if let Some(action) = self.correct_drift(&vm, &config, &plan).await? {
            return Ok(action);
        }

        // 5. Changes that need a restart, and 6. the power state.
        let running = self.is_running(&vm).await?;
        if let Some(action) = self.restart_for_pending(&vm, running).await? {
            return Ok(action);
        }
        // The config read, verified and unchanged by this pass, goes with a start to the passes
        // after it (a stopped VM has no pending changes, and a start changes no config).
        let unchanged = (plan.is_empty() && !running).then_some(config);
        if let Some(action) = self.power(&vm, running, unchanged).await? {
            return Ok(action);
        }

        // 7. Addresses from the guest agent.
        self.read_addresses(&vm, running).await;
        let waiting_for_agent =
            running && self.request.spec.guest_agent && self.status.ip_addresses.is_empty();

        // 8. Done: the VM is as specified.
        self.as_specified(&vm, running, plan.conflicts.is_empty());
        if waiting_for_agent {
            return Ok(Action::requeue(AGENT_RETRY));
        }
        Ok(self
            .ctx
            .settings
            .resync
            .map_or_else(Action::await_change, Action::requeue))
    }

    /// Step 1: what became of the recorded task. `Some` ends the pass (a task runs, or one that
    /// failed for good holds the request back).
    async fn settle_recorded_task(&mut self) -> Result<Option<Action>, ReconcileError> {
        match recorded_task(self.status, self.conn, self.scope)? {
            RecordedTask::Running => return Ok(Some(Action::requeue(WAIT))),
            RecordedTask::Succeeded(task) => {
                let uid = &self.scope.marker.uid;
                self.conn.handoffs.confirm(uid, &task.upid);
                let note = format!("{} finished", describe_task(&task));
                self.event(EventType::Normal, "TaskSucceeded", &note).await;
            }
            RecordedTask::None => {}
        }
        if self.held_back_by_failed_task().await {
            return Ok(Some(Action::await_change()));
        }
        // What the request's last task left, unless a later inventory read shows otherwise.
        let inventory = self.conn.inventory.snapshot();
        self.handoff = self
            .conn
            .handoffs
            .current(&self.scope.marker.uid, &inventory);
        Ok(None)
    }

    /// Keeps the hand-off true to what this pass does with `config`: a plan that changes the VM
    /// makes it stale; a config verified on a stopped VM that nothing changes goes with it.
    fn hand_config_on(
        &mut self,
        vm: &crate::proxmox::VmEntry,
        config: &pve_client::api::vmconfig::VmConfigView,
        plan: &vmspec::UpdatePlan,
    ) {
        let uid = &self.scope.marker.uid;
        if !plan.is_empty() {
            self.conn.handoffs.forget(uid);
            self.handoff = None;
        } else if !vm.is_running() && self.handoff_for(vm).is_some_and(|h| h.config.is_none()) {
            self.conn.handoffs.remember_config(uid, config);
        }
    }

    /// Step 3: the VM exists and is ours; status says where.
    async fn record_found(&mut self, vm: &crate::proxmox::VmEntry) {
        self.status.vmid = Some(vm.vmid);
        self.status.node = Some(vm.node.clone());
        self.conn.vmids.release(vm.vmid).await;
        if !is_true(self.status, types::PROVISIONED) {
            let note = format!("VM {} exists on node {}", vm.vmid, vm.node);
            self.event(EventType::Normal, "Provisioned", &note).await;
        }
        self.condition(
            types::PROVISIONED,
            true,
            "VmExists",
            format!("VM {} on node {}", vm.vmid, vm.node),
        );
    }

    /// Step 8: the phase, the Powered condition, and Ready when nothing conflicts.
    fn as_specified(&mut self, vm: &crate::proxmox::VmEntry, running: bool, no_conflicts: bool) {
        let (phase, powered) = if running {
            (Phase::Running, "the VM is running")
        } else {
            (Phase::Stopped, "the VM is stopped, as specified")
        };
        self.status.phase = Some(phase);
        let reason = if running { "Running" } else { "Stopped" };
        self.condition(types::POWERED, running, reason, powered);
        if no_conflicts {
            // As specified: from now on the inventory says what the VM is (and the hand-off's
            // config, kept per request, is not held for thousands of Ready requests).
            self.conn.handoffs.forget(&self.scope.marker.uid);
            self.condition(
                types::READY,
                true,
                "AsSpecified",
                format!("VM {} on node {} matches the spec", vm.vmid, vm.node),
            );
        }
        self.status.observed_generation = self.generation();
    }

    /// Whether the spec asks for a running VM.
    fn wants_running(&self) -> bool {
        self.request.spec.power_state == PowerState::Running
    }
}

/// The object reference of a request, for triggers.
pub fn object_ref(request: &MachineRequest) -> ObjectRef<MachineRequest> {
    ObjectRef::new(&request.name_any()).within(&request.namespace().unwrap_or_default())
}
