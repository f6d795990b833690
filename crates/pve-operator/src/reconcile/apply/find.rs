//! Phase 2: the request's own VM, found by its uid tag or the recorded VMID and verified by its
//! full marker (docs/design.md principles 1 and 2), or the finding that there is none to use.

use std::sync::Arc;

use kube::runtime::events::EventType;
use pve_client::api::vmconfig::VmConfigView;

use super::super::error::ReconcileError;
use super::super::ownership::{self, OwnershipConflict, Verdict};
use super::super::status::{self, is_true, types};
use super::Pass;
use crate::proxmox::inventory::Marked;
use crate::proxmox::{ClusterRuntime, Snapshot, VmEntry};
use crate::vmspec;

/// What is at a request's place in Proxmox.
pub(super) enum Found {
    /// The request's own VM, with the config read to verify it (step 4 plans on it).
    Ours(VmEntry, VmConfigView),
    /// No VM: one is to be created. Carries the inventory read that told so, when it was read
    /// during this reconcile (the create reuses it instead of reading again).
    Nothing(Option<Arc<Snapshot>>),
    /// A VM at the recorded VMID whose ownership cannot be told yet (a create or clone still
    /// holds its lock; the config carries no keys until the worker writes them). It is neither
    /// touched nor replaced until the lock clears.
    Undecided(String),
}

impl Pass<'_> {
    /// Finds the request's VM, verifying ownership (docs/design.md principles 1 and 2): the VM that
    /// carries the request's uid tag, or the VM at the recorded VMID, is the request's only with
    /// the full marker in its config (or, at the recorded VMID, in the clone window); a template
    /// never is. A VM with part of the marker, or several VMs with the uid tag, are an
    /// [`OwnershipConflict`]: nothing is touched and nothing is created. A VM at the recorded
    /// VMID without any of the marker is someone else's: a warning says so and a new VM is made.
    pub(super) async fn find_own_vm(&mut self) -> Result<Found, ReconcileError> {
        let conn = self.conn;
        let marker = self.scope.marker;
        let mut snapshot = conn.inventory.snapshot();
        let mut fresh = false;
        let recorded = self.status.vmid;
        let untagged = |s: &Snapshot| matches!(s.find_marked(marker), Marked::None);
        // The first look at this version of a new request, taken before it may wait for a slot
        // (so that the pass it is woken for can use any read since).
        let version = self.request.metadata.resource_version.as_deref();
        let since = (recorded.is_none()).then(|| {
            conn.first_looks
                .at(&marker.uid, version.unwrap_or_default())
        });
        if recorded.is_none() && untagged(&snapshot) {
            // A new request can only wait while every node runs as many of the controller's
            // tasks as allowed: it waits without reading anything (a burst of requests would
            // otherwise read the whole inventory once a second each).
            let online: Vec<&str> = snapshot
                .nodes
                .values()
                .filter(|n| n.online)
                .map(|n| n.name.as_str())
                .collect();
            let owner = crate::proxmox::Wake::Request(self.scope.object_ref.clone());
            if !online.is_empty() && conn.tasks.all_busy_or_wait(&online, &owner) {
                return Err(ReconcileError::NodeBusy(online.join(", ")));
            }
        }
        // Before deciding that a new request has no VM, look at Proxmox as it is since the
        // request reached this version, not at an older read. (A request with a recorded VMID
        // is looked up by that VMID below.)
        if let Some(since) = since.filter(|_| untagged(&snapshot)) {
            snapshot = (conn.inventory.snapshot_since(since).await)
                .map_err(ReconcileError::proxmox("reading /cluster/resources"))?;
            fresh = true;
        } else if snapshot.read_at.is_none() {
            snapshot = fresh_inventory(conn).await?;
            fresh = true;
        }
        if let Some(found) = by_uid_tag(conn, marker, &snapshot, recorded).await? {
            return Ok(found);
        }
        let Some(vmid) = recorded else {
            return Ok(Found::Nothing(fresh.then_some(snapshot)));
        };
        // The task that just succeeded on the recorded VM says what it left (fresher than the
        // inventory, which usually predates the VM); with the config its pass verified and
        // nothing changed since, the VM is known to be this request's without a read.
        let handed = self
            .handoff
            .clone()
            .filter(|h| h.is_for(recorded, self.status.node.as_deref()));
        if let Some(handed) = handed {
            return Ok(match handed.config {
                Some(config) => Found::Ours(handed.vm, config),
                None => self.judge(vmid, handed.vm, None).await?,
            });
        }
        let mut entry = snapshot.vms.get(&vmid).cloned();
        if entry.is_none() && !fresh {
            // The inventory predates the VM (usually: the controller created it since the last
            // read). One read of that VM answers, where a fresh inventory would cost a read of
            // every VM in the cluster for each such request.
            entry = match &self.status.node {
                Some(node) => ownership::read_one_vm(conn, node, vmid).await?,
                None => None,
            };
            if entry.is_none() {
                // Not where it was recorded (or no node recorded): it may have moved; ask the
                // whole cluster before deciding it is gone.
                snapshot = fresh_inventory(conn).await?;
                fresh = true;
                if let Some(found) = by_uid_tag(conn, marker, &snapshot, recorded).await? {
                    return Ok(found);
                }
                entry = snapshot.vms.get(&vmid).cloned();
            }
        }
        let Some(vm) = entry else {
            if is_true(self.status, types::PROVISIONED) {
                let note = format!("VM {vmid} is gone from Proxmox; creating it again");
                self.event(EventType::Warning, "VmMissing", &note).await;
                status::clear_condition(self.status, types::PROVISIONED);
            }
            return Ok(Found::Nothing(fresh.then_some(snapshot)));
        };
        self.judge(vmid, vm, fresh.then_some(snapshot)).await
    }

    /// Verifies that `vm`, at the recorded VMID, is the request's (its config read), or says
    /// why it is not and that a new one is made (with `fresh`, the inventory read this pass).
    async fn judge(
        &mut self,
        vmid: u32,
        vm: VmEntry,
        fresh: Option<Arc<Snapshot>>,
    ) -> Result<Found, ReconcileError> {
        let (conn, marker, recorded) = (self.conn, self.scope.marker, self.status.vmid);
        let node = vm.node.clone();
        let template = match ownership::verify(conn, marker, vm, recorded).await? {
            Verdict::Ours(vm, config) => return Ok(Found::Ours(vm, config)),
            Verdict::Undecided(why) => return Ok(Found::Undecided(why)),
            Verdict::Partial(mismatch) => {
                return Err(OwnershipConflict::MarkerMismatch { vmid, mismatch }.into());
            }
            Verdict::NotOurs { template } => template,
        };
        let what = if template {
            "is a template, and a template is never a request's VM"
        } else {
            "does not carry this request's marker; it belongs to someone else"
        };
        let message = format!(
            "VM {vmid} on node {node} (recorded in status.vmid) {what}. It will not be touched; a new VM is created for this request."
        );
        self.event(EventType::Warning, "ForeignVm", &message).await;
        self.condition(types::PROVISIONED, false, "ForeignVmAtVmid", message);
        self.status.vmid = None;
        self.status.node = None;
        Ok(Found::Nothing(fresh))
    }
}

/// The request's VM as found by its uid tag, verified; `None` when the tag decides nothing (no
/// VM carries it, the one that does is at the recorded VMID and is judged there, or its tag is
/// gone since the inventory was read). Several VMs with the tag, or one with part of the
/// marker, are a conflict.
async fn by_uid_tag(
    conn: &ClusterRuntime,
    marker: &vmspec::Marker,
    snapshot: &Snapshot,
    recorded: Option<u32>,
) -> Result<Option<Found>, ReconcileError> {
    let vm = match snapshot.find_marked(marker) {
        Marked::Several(vmids) => return Err(OwnershipConflict::duplicates(marker, vmids).into()),
        Marked::One(vm) if Some(vm.vmid) != recorded => vm.clone(),
        Marked::One(_) | Marked::None => return Ok(None),
    };
    let vmid = vm.vmid;
    match ownership::verify(conn, marker, vm, recorded).await? {
        Verdict::Ours(vm, config) => Ok(Some(Found::Ours(vm, config))),
        Verdict::Undecided(why) => Ok(Some(Found::Undecided(why))),
        Verdict::Partial(mismatch) => {
            Err(OwnershipConflict::MarkerMismatch { vmid, mismatch }.into())
        }
        Verdict::NotOurs { .. } => Ok(None),
    }
}

/// An inventory read that began after this call (shared with concurrent callers).
pub(super) async fn fresh_inventory(
    conn: &ClusterRuntime,
) -> Result<Arc<Snapshot>, ReconcileError> {
    conn.inventory
        .fresh_snapshot()
        .await
        .map_err(ReconcileError::proxmox("reading /cluster/resources"))
}
