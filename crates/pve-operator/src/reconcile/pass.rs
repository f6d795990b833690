//! One pass of a reconcile over one MachineRequest, as the apply path (`apply/`) and the deletion
//! path (`cleanup.rs`) share it: the request, what the reconcile knows about it, its cluster's
//! runtime, the controller's context and the status being written, with the small things every
//! phase does (conditions, Events, task slots, recording a started task).

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::Upid;
use pve_operator_api::{MachineRequest, MachineRequestStatus};

use super::apply::WAIT;
use super::error::ReconcileError;
use super::status::set_condition;
use super::task_kind::TaskKind;
use super::{Context, RequestScope};
use crate::proxmox::tasks::NodeSlot;
use crate::proxmox::{ClusterRuntime, Handoff, Wake};

/// What every phase of one pass works with. Each phase is a method, in the module of its path.
pub(super) struct Pass<'a> {
    pub(super) request: &'a MachineRequest,
    pub(super) scope: &'a RequestScope<'a>,
    pub(super) conn: &'a ClusterRuntime,
    pub(super) ctx: &'a Context,
    pub(super) status: &'a mut MachineRequestStatus,
    /// What the pass that sent the task which just succeeded knew about the VM (taken in phase
    /// 1; see `proxmox/handoff.rs`).
    pub(super) handoff: Option<Handoff>,
}

impl Pass<'_> {
    /// The request's generation, for conditions.
    pub(super) fn generation(&self) -> Option<i64> {
        self.request.metadata.generation
    }

    /// Sets condition `type_` at the request's generation.
    pub(super) fn condition(
        &mut self,
        type_: &str,
        value: bool,
        reason: &str,
        message: impl Into<String>,
    ) {
        let generation = self.generation();
        set_condition(self.status, generation, type_, value, reason, message);
    }

    /// Publishes an Event on the request.
    pub(super) async fn event(&self, type_: EventType, reason: &str, note: &str) {
        self.scope.event(self.ctx, type_, reason, note).await;
    }

    /// A task slot on `node`, or the wait for one.
    pub(super) fn reserve_slot(&self, node: &str) -> Result<NodeSlot, ReconcileError> {
        let owner = Wake::Request(self.scope.object_ref.clone());
        (self.conn.tasks.reserve(node, &owner)).ok_or_else(|| node_busy(node))
    }

    /// Records the started task `upid` in status and hands it to the task tracker.
    pub(super) fn record_task(&mut self, upid: &Upid, kind: TaskKind, slot: NodeSlot) {
        // A hand-off left for an earlier task no longer says what the VM is.
        (self.conn.handoffs).keep_only(&self.scope.marker.uid, upid);
        self.conn.tasks.track_with(
            upid,
            Wake::Request(self.scope.object_ref.clone()),
            Some(slot),
        );
        self.status.current_task = Some(kind.task_ref(upid));
    }

    /// [`Pass::record_task`], then the wait for it to end.
    pub(super) fn start_task(&mut self, upid: Upid, kind: TaskKind, slot: NodeSlot) -> Action {
        self.record_task(&upid, kind, slot);
        Action::requeue(WAIT)
    }
}

/// The wait for a slot on `node` (docs/design.md "Performance": bounded load per node).
pub(super) fn node_busy(node: &str) -> ReconcileError {
    ReconcileError::NodeBusy(node.to_string())
}
