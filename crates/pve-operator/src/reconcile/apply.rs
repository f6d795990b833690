//! Bringing a VM to what its MachineRequest says: find it (or create it), correct its config and
//! power state, and tell the story in status. Every Proxmox task is recorded in status and handed
//! to the cluster's task tracker; a reconcile never waits for one.

use super::task_kind::{TaskKind, describe_task};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use pve_client::api::qemu::{ConfigUpdate, DiskSize, ShutdownOptions};
use pve_client::api::vmconfig::VmConfigView;
use pve_client::{ErrorKind, Upid};
use pve_operator_api::{
    FailedTask, MachineRequest, MachineRequestStatus, PendingChangePolicy, Phase, PowerState,
    TaskRef,
};

use super::error::ReconcileError;
use super::ownership::{self, OwnershipConflict, Verdict};
use super::placement::{NodeLoad, choose_node};
use super::status::{self, is_true, set_condition, types};
use super::{Context, RequestScope};
use crate::privileges::{self, Step};
use crate::proxmox::inventory::Marked;
use crate::proxmox::tasks::NodeSlot;
use crate::proxmox::{Connection, Snapshot, VmEntry};
use crate::vmspec;

/// How long to wait before looking again while something runs in Proxmox; the task tracker and
/// the inventory usually trigger the reconcile much earlier.
pub(super) const WAIT: Duration = Duration::from_secs(30);

/// How soon to ask a guest agent again that did not answer (the guest is still booting).
const AGENT_RETRY: Duration = Duration::from_secs(5);

/// One pass of the apply path. Changes `status` in place; the caller writes it.
pub async fn apply(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    conn: &Connection,
    status: &mut MachineRequestStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let marker = scope.marker;
    let generation = request.metadata.generation;

    // 1. A task in flight: nothing to do until the tracker says it ended.
    match recorded_task(status, conn, scope)? {
        RecordedTask::Running => return Ok(Action::requeue(WAIT)),
        RecordedTask::Succeeded(task) => {
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "TaskSucceeded",
                    &format!("{} finished", describe_task(&task)),
                )
                .await;
        }
        RecordedTask::None => {}
    }
    // A step that failed for good is not sent again (nor anything else) until the spec or the
    // retry annotation changes.
    if held_back_by_failed_task(request, scope, status, ctx).await {
        return Ok(Action::await_change());
    }

    // What the request's identity and cluster allow, before anything is touched or made.
    scope.policy.check_spec(&request.spec)?;
    if let Some(vmid) = status.vmid {
        scope.policy.check_recorded_vmid(vmid)?;
    }

    // 2. Find the VM, by our uid tag or the recorded VMID, verifying that it carries our full
    // marker (the config read to tell is step 4's).
    let (vm, config) = match find_own_vm(request, scope, conn, status, ctx).await? {
        Found::Ours(vm, config) => (vm, config),
        Found::Nothing(snapshot) => {
            return create(request, scope, conn, status, snapshot, ctx).await;
        }
        Found::Undecided(why) => {
            status.phase = Some(Phase::Provisioning);
            set_condition(
                status,
                generation,
                types::READY,
                false,
                "VerifyingOwnership",
                why,
            );
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
    };

    // 3. The VM exists and is ours.
    status.vmid = Some(vm.vmid);
    status.node = Some(vm.node.clone());
    conn.vmids.release(vm.vmid).await;
    if !is_true(status, types::PROVISIONED) {
        scope
            .event(
                ctx,
                EventType::Normal,
                "Provisioned",
                &format!("VM {} exists on node {}", vm.vmid, vm.node),
            )
            .await;
    }
    set_condition(
        status,
        generation,
        types::PROVISIONED,
        true,
        "VmExists",
        format!("VM {} on node {}", vm.vmid, vm.node),
    );
    if let Some(lock) = &vm.lock {
        status.phase = Some(Phase::Provisioning);
        set_condition(
            status,
            generation,
            types::READY,
            false,
            "VmLocked",
            format!("VM {} is locked ({lock}) in Proxmox; waiting", vm.vmid),
        );
        return Ok(Action::requeue(Duration::from_secs(5)));
    }

    // 4. Config drift, planned on the config read when the VM's ownership was verified.
    let pve = &conn.pve;
    let plan = vmspec::plan_update(&request.spec, marker, &scope.vm_name, &config)?;
    if !plan.conflicts.is_empty() {
        set_condition(
            status,
            generation,
            types::READY,
            false,
            "ConfigConflict",
            plan.conflicts.join("; "),
        );
        scope
            .event(
                ctx,
                EventType::Warning,
                "ConfigConflict",
                &plan.conflicts.join("; "),
            )
            .await;
    }
    let keys = plan.changed_keys();
    let sets_keys = plan
        .config
        .to_params()
        .map(|p| !p.is_empty())
        .unwrap_or(true);
    if sets_keys || !plan.delete.is_empty() {
        let update = ConfigUpdate {
            delete: plan.delete.clone(),
            digest: Some(config.digest.clone()).filter(|d| !d.is_empty()),
            revert: Vec::new(),
        };
        let slot = conn
            .tasks
            .reserve(&vm.node)
            .ok_or_else(|| node_busy(&vm.node))?;
        let upid = pve
            .qemu_update_async(&vm.node, vm.vmid, &plan.config, &update)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "updating the config of VM {} ({})",
                vm.vmid,
                keys.join(", ")
            )))?;
        scope
            .event(
                ctx,
                EventType::Normal,
                "ConfigUpdated",
                &format!("VM {}: {}", vm.vmid, keys.join(", ")),
            )
            .await;
        if let Some(upid) = upid {
            return Ok(start_task(
                status,
                conn,
                scope,
                upid,
                TaskKind::Config,
                slot,
            ));
        }
    }

    // Disks grow after the config update (a resize changes the digest the update was planned on).
    for (slot, size_gib) in &plan.resizes {
        pve.qemu_resize(
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
        scope
            .event(
                ctx,
                EventType::Normal,
                "DiskGrown",
                &format!("disk {slot} of VM {} grown to {size_gib} GiB", vm.vmid),
            )
            .await;
    }

    // The inventory may lag behind (a start sent just before a controller restart, or one this
    // controller saw end after the last read): before acting on the power state, and before
    // calling it as specified, ask Proxmox for the VM's current state whenever the inventory
    // disagrees with the spec or with what this controller last saw (status.phase). Trusting a
    // stale "stopped" that happens to match a new `powerState: Stopped` would report a running
    // VM as Ready and never shut it down.
    let wants_running = request.spec.power_state == PowerState::Running;
    let running = if inventory_power_will_do(vm.is_running(), wants_running, status.phase) {
        vm.is_running()
    } else {
        pve.qemu_status(&vm.node, vm.vmid)
            .await
            .map_err(ReconcileError::proxmox(format!(
                "reading the status of VM {}",
                vm.vmid
            )))?
            .is_running()
    };

    // 5. Changes that need a restart.
    // Only a running VM keeps changes pending; a stopped one takes them at once.
    let pending = if running {
        pve.qemu_pending(&vm.node, vm.vmid)
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
    if running && !pending_keys.is_empty() {
        let keys = pending_keys.join(", ");
        match request.spec.pending_changes {
            PendingChangePolicy::Report => {
                set_condition(
                    status,
                    generation,
                    types::RESTART_REQUIRED,
                    true,
                    "PendingChanges",
                    format!("restart VM {} to apply: {keys}", vm.vmid),
                );
            }
            PendingChangePolicy::Restart => {
                scope
                    .event(
                        ctx,
                        EventType::Normal,
                        "Restarting",
                        &format!("VM {} restarts to apply: {keys}", vm.vmid),
                    )
                    .await;
                return shut_down(
                    request,
                    scope,
                    conn,
                    status,
                    &vm,
                    "to apply pending changes",
                )
                .await;
            }
        }
    } else {
        status::clear_condition(status, types::RESTART_REQUIRED);
    }

    // 6. Power state.
    match (request.spec.power_state, running) {
        (PowerState::Running, false) => {
            privileges::require(conn, &request.spec, Step::Power).await?;
            let slot = conn
                .tasks
                .reserve(&vm.node)
                .ok_or_else(|| node_busy(&vm.node))?;
            let upid = pve
                .qemu_start(&vm.node, vm.vmid)
                .await
                .map_err(ReconcileError::proxmox(format!("starting VM {}", vm.vmid)))?;
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "Starting",
                    &format!("starting VM {}", vm.vmid),
                )
                .await;
            set_condition(
                status,
                generation,
                types::POWERED,
                false,
                "Starting",
                "the VM is starting",
            );
            return Ok(start_task(status, conn, scope, upid, TaskKind::Start, slot));
        }
        (PowerState::Stopped, true) => {
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "ShuttingDown",
                    &format!("shutting down VM {}", vm.vmid),
                )
                .await;
            return shut_down(request, scope, conn, status, &vm, "as specified").await;
        }
        _ => {}
    }

    // 7. Addresses from the guest agent.
    status.ip_addresses = if running && request.spec.guest_agent {
        match pve.qemu_agent_network(&vm.node, vm.vmid).await {
            Ok(interfaces) => interfaces
                .iter()
                .filter(|i| i.name != "lo")
                .flat_map(|i| i.ip_addresses.iter())
                .filter(|a| {
                    !a.ip_address.starts_with("127.")
                        && a.ip_address != "::1"
                        && !a.ip_address.starts_with("fe80:")
                })
                .map(|a| a.ip_address.clone())
                .collect(),
            Err(pve_client::PveError::PermissionDenied { message, .. }) => {
                // Not fatal for the VM, but the user should know why no address shows.
                set_condition(
                    status,
                    generation,
                    types::PRIVILEGES,
                    false,
                    "MissingPrivilege",
                    format!(
                        "reading addresses from the guest agent of VM {}: {message}",
                        vm.vmid
                    ),
                );
                std::mem::take(&mut status.ip_addresses)
            }
            Err(error) => {
                // A booting guest's agent is not up yet (PVE: "QEMU guest agent is not
                // running"): keep the addresses known so far and ask again soon.
                tracing::debug!(vmid = vm.vmid, %error, "guest agent not answering yet");
                std::mem::take(&mut status.ip_addresses)
            }
        }
    } else {
        Vec::new()
    };
    let waiting_for_agent = running && request.spec.guest_agent && status.ip_addresses.is_empty();

    // 8. Done: the VM is as specified.
    let (phase, powered) = if running {
        (Phase::Running, "the VM is running")
    } else {
        (Phase::Stopped, "the VM is stopped, as specified")
    };
    status.phase = Some(phase);
    set_condition(
        status,
        generation,
        types::POWERED,
        running,
        if running { "Running" } else { "Stopped" },
        powered,
    );
    if plan.conflicts.is_empty() {
        set_condition(
            status,
            generation,
            types::READY,
            true,
            "AsSpecified",
            format!("VM {} on node {} matches the spec", vm.vmid, vm.node),
        );
    }
    status.observed_generation = generation;
    if waiting_for_agent {
        return Ok(Action::requeue(AGENT_RETRY));
    }
    Ok(ctx
        .settings
        .resync
        .map_or_else(Action::await_change, Action::requeue))
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

/// What is at a request's place in Proxmox.
enum Found {
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

/// Finds the request's VM, verifying ownership (DESIGN principles 1 and 2): the VM that
/// carries the request's uid tag, or the VM at the recorded VMID, is the request's only with
/// the full marker in its config (or, at the recorded VMID, in the clone window); a template
/// never is. A VM with part of the marker, or several VMs with the uid tag, are an
/// [`OwnershipConflict`]: nothing is touched and nothing is created. A VM at the recorded VMID
/// without any of the marker is someone else's: a warning says so and a new VM is made.
async fn find_own_vm(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    conn: &Connection,
    status: &mut MachineRequestStatus,
    ctx: &Context,
) -> Result<Found, ReconcileError> {
    let marker = scope.marker;
    let mut snapshot = conn.inventory.snapshot();
    let mut fresh = false;
    let recorded = status.vmid;
    let untagged = |s: &Snapshot| matches!(s.find_marked(marker), Marked::None);
    if recorded.is_none() && untagged(&snapshot) {
        // A new request can only wait while every node runs as many of the controller's tasks
        // as allowed: it waits without reading anything (a burst of requests would otherwise
        // read the whole inventory once a second each).
        let online: Vec<&str> = snapshot
            .nodes
            .values()
            .filter(|n| n.online)
            .map(|n| n.name.as_str())
            .collect();
        if !online.is_empty() && online.iter().all(|n| conn.tasks.free_slots(n) == 0) {
            return Err(ReconcileError::NodeBusy(online.join(", ")));
        }
    }
    // Before deciding that a new request has no VM, look at Proxmox now, not at a cached read.
    // (A request with a recorded VMID is looked up by that VMID below.)
    if snapshot.read_at.is_none() || (recorded.is_none() && untagged(&snapshot)) {
        snapshot = fresh_inventory(conn).await?;
        fresh = true;
    }
    if let Some(found) = by_uid_tag(conn, marker, &snapshot, recorded).await? {
        return Ok(found);
    }
    let Some(vmid) = recorded else {
        return Ok(Found::Nothing(fresh.then_some(snapshot)));
    };
    let mut entry = snapshot.vms.get(&vmid).cloned();
    if entry.is_none() && !fresh {
        // The inventory predates the VM (usually: the controller created it since the last
        // read). One read of that VM answers, where a fresh inventory would cost a read of every
        // VM in the cluster for each such request.
        entry = match &status.node {
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
        if is_true(status, types::PROVISIONED) {
            scope
                .event(
                    ctx,
                    EventType::Warning,
                    "VmMissing",
                    &format!("VM {vmid} is gone from Proxmox; creating it again"),
                )
                .await;
            status::clear_condition(status, types::PROVISIONED);
        }
        return Ok(Found::Nothing(fresh.then_some(snapshot)));
    };
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
    scope
        .event(ctx, EventType::Warning, "ForeignVm", &message)
        .await;
    set_condition(
        status,
        request.metadata.generation,
        types::PROVISIONED,
        false,
        "ForeignVmAtVmid",
        message,
    );
    status.vmid = None;
    status.node = None;
    Ok(Found::Nothing(fresh.then_some(snapshot)))
}

/// The request's VM as found by its uid tag, verified; `None` when the tag decides nothing (no
/// VM carries it, the one that does is at the recorded VMID and is judged there, or its tag is
/// gone since the inventory was read). Several VMs with the tag, or one with part of the
/// marker, are a conflict.
async fn by_uid_tag(
    conn: &Connection,
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
async fn fresh_inventory(conn: &Connection) -> Result<Arc<Snapshot>, ReconcileError> {
    conn.inventory
        .fresh_snapshot()
        .await
        .map_err(ReconcileError::proxmox("reading /cluster/resources"))
}

/// Creates the VM: VMID and node are chosen and recorded in status before the create is sent,
/// and the create itself carries the marker, so a crash at any point finds the VM again.
async fn create(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    conn: &Connection,
    status: &mut MachineRequestStatus,
    snapshot: Option<Arc<Snapshot>>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let generation = request.metadata.generation;
    let spec = &request.spec;
    // Every field through the client's encoders first, on both boot paths: what they refuse
    // is reported before a VMID is recorded (and, for a clone, before the clone exists).
    vmspec::check_encodes(spec, scope.marker, &scope.vm_name)?;
    // Nothing is created that Proxmox would refuse to create, configure, start or delete.
    privileges::require(conn, spec, Step::Create).await?;
    // Placement and VMID allocation need a current view: the one this reconcile just read, or
    // a new one.
    let snapshot = match snapshot {
        Some(snapshot) => snapshot,
        None => fresh_inventory(conn).await?,
    };

    let template = super::validate::template(spec, &snapshot)?.cloned();
    // A clone is made on the template's node.
    let node = match (&template, &status.node) {
        (Some(t), _) => t.node.clone(),
        (None, Some(recorded)) if snapshot.nodes.get(recorded).is_some_and(|n| n.online) => {
            recorded.clone()
        }
        (None, _) => {
            let recent = conn.placements.by_node();
            let load = snapshot
                .nodes
                .keys()
                .map(|node| {
                    let load = NodeLoad {
                        has_free_task_slot: conn.tasks.free_slots(node) > 0,
                        recently_placed: recent.get(node).copied().unwrap_or_default(),
                    };
                    (node.clone(), load)
                })
                .collect();
            let allowed = scope.policy.allowed_nodes();
            choose_node(spec, &snapshot, &load, allowed.as_ref())
                .map_err(ReconcileError::Placement)?
        }
    };
    // Everything Proxmox can tell about the spec, before a VMID is recorded or a task sent.
    super::validate::before_create(spec, conn, &snapshot, &node, template.as_ref(), scope).await?;
    // A slot on the node first: a VMID is recorded only for a create about to be sent.
    let slot = conn.tasks.reserve(&node).ok_or_else(|| node_busy(&node))?;
    if template.is_none() && status.node.as_ref() != Some(&node) {
        // A new placement: count it until the inventory can show it.
        conn.placements
            .record(&node, spec.memory.size_mib.saturating_mul(1 << 20));
    }
    let vmid = match status.vmid {
        Some(id) if !snapshot.vms.contains_key(&id) => {
            let free = conn
                .pve
                .vmid_is_free(id)
                .await
                .map_err(ReconcileError::proxmox(format!(
                    "checking whether VMID {id} is free"
                )))?;
            if !free {
                // Taken, yet not in the inventory: a VM this token cannot see, which may be the
                // one it created (without VM.Audit every VM is invisible). Allocating another
                // VMID here would create a VM on every pass; stop and say why instead.
                return Err(ReconcileError::InvisibleVm(id));
            }
            id
        }
        _ => {
            conn.vmids
                .allocate(&conn.pve, &snapshot, scope.policy.vmid_range()?)
                .await?
        }
    };

    // Record the choice first (a crash after this point reuses the same VMID).
    status.vmid = Some(vmid);
    status.node = Some(node.clone());
    status.phase = Some(Phase::Provisioning);
    set_condition(
        status,
        generation,
        types::PROVISIONED,
        false,
        "Creating",
        format!("creating VM {vmid} on node {node}"),
    );
    set_condition(
        status,
        generation,
        types::READY,
        false,
        "Provisioning",
        format!("creating VM {vmid} on node {node}"),
    );
    scope.status.write(status).await?;

    let sent = match &template {
        Some(t) => {
            let options = vmspec::clone_options(spec, scope.marker, &scope.vm_name, vmid)?;
            conn.pve
                .qemu_clone(&node, t.vmid, &options)
                .await
                .map(|u| (u, TaskKind::Clone))
        }
        None => {
            let config = vmspec::create_config(spec, scope.marker, &scope.vm_name)?;
            conn.pve
                .qemu_create(&node, vmid, &config, false)
                .await
                .map(|u| (u, TaskKind::Create))
        }
    };
    match sent {
        Ok((upid, kind)) => {
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "Creating",
                    &format!("creating VM {vmid} on node {node}"),
                )
                .await;
            Ok(start_task(status, conn, scope, upid, kind, slot))
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            // Someone took the VMID between our check and the create: pick another next time.
            conn.vmids.mark_taken(vmid).await;
            status.vmid = None;
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "VmidTaken",
                    &format!("VMID {vmid} was taken meanwhile; choosing another"),
                )
                .await;
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        Err(error) => Err(ReconcileError::Proxmox {
            action: format!("creating VM {vmid} on node {node}"),
            source: error,
        }),
    }
}

fn start_task(
    status: &mut MachineRequestStatus,
    conn: &Connection,
    scope: &RequestScope<'_>,
    upid: Upid,
    kind: TaskKind,
    slot: NodeSlot,
) -> Action {
    conn.tasks
        .track_with(&upid, scope.object_ref.clone(), Some(slot));
    status.current_task = Some(kind.task_ref(&upid));
    Action::requeue(WAIT)
}

/// The wait for a slot on `node` (DESIGN: bounded load per node).
pub(super) fn node_busy(node: &str) -> ReconcileError {
    ReconcileError::NodeBusy(node.to_string())
}

/// Asks Proxmox for a clean shutdown of `vm` (forced after 120 s) and records the task; `why`
/// completes the error message.
async fn shut_down(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    conn: &Connection,
    status: &mut MachineRequestStatus,
    vm: &VmEntry,
    why: &str,
) -> Result<Action, ReconcileError> {
    privileges::require(conn, &request.spec, Step::Power).await?;
    let slot = conn
        .tasks
        .reserve(&vm.node)
        .ok_or_else(|| node_busy(&vm.node))?;
    let options = ShutdownOptions {
        timeout: Some(120),
        force_stop: Some(true),
    };
    let upid = conn
        .pve
        .qemu_shutdown(&vm.node, vm.vmid, &options)
        .await
        .map_err(ReconcileError::proxmox(format!(
            "shutting down VM {} {why}",
            vm.vmid
        )))?;
    Ok(start_task(
        status,
        conn,
        scope,
        upid,
        TaskKind::Shutdown,
        slot,
    ))
}

/// What became of the task recorded in a request's status.
pub(super) enum RecordedTask {
    /// No task is recorded.
    None,
    /// It still runs.
    Running,
    /// It ended well (and is no longer recorded).
    Succeeded(TaskRef),
}

/// Looks at the task recorded in `status` through the cluster's task tracker (tracking it again
/// after a restart). A finished task is cleared from status; a failed one becomes an error that
/// carries Proxmox's exit status and the last line of the task log.
pub(super) fn recorded_task(
    status: &mut MachineRequestStatus,
    conn: &Connection,
    scope: &RequestScope<'_>,
) -> Result<RecordedTask, ReconcileError> {
    let Some(task) = status.current_task.clone() else {
        return Ok(RecordedTask::None);
    };
    let Ok(upid) = task.upid.parse::<Upid>() else {
        status.current_task = None; // not a UPID: nothing to wait for
        return Ok(RecordedTask::None);
    };
    conn.tasks.track(&upid, scope.object_ref.clone());
    let Some(outcome) = conn.tasks.take_outcome(&upid) else {
        return Ok(RecordedTask::Running);
    };
    status.current_task = None;
    if outcome.succeeded() {
        return Ok(RecordedTask::Succeeded(task));
    }
    Err(ReconcileError::TaskFailed {
        action: describe_task(&task),
        upid: task.upid.clone(),
        task_type: task.task_type.clone(),
        exit: outcome.exit.to_string(),
        log_tail: outcome.log_tail,
    })
}

/// The longest Proxmox exit status kept in `status.failedTask`.
const EXIT_STATUS_CHARS: usize = 1024;

/// Records in `status.failedTask` a task that failed for good (`error` is a
/// [`ReconcileError::TaskFailed`] that is not transient), with the generation and retry
/// annotation it failed at, so that neither this controller nor one started later sends it again
/// until one of them changes.
pub(super) fn record_failed_task(
    request: &MachineRequest,
    status: &mut MachineRequestStatus,
    error: &ReconcileError,
) {
    let ReconcileError::TaskFailed {
        upid,
        task_type,
        exit,
        ..
    } = error
    else {
        return;
    };
    status.failed_task = Some(FailedTask {
        upid: upid.clone(),
        task_type: task_type.clone(),
        exit_status: exit.chars().take(EXIT_STATUS_CHARS).collect(),
        reason: error.reason().to_string(),
        observed_generation: request.metadata.generation.unwrap_or_default(),
        retry_annotation: retry_annotation(request),
    });
}

fn retry_annotation(request: &MachineRequest) -> Option<String> {
    request.annotations().get(super::RETRY_ANNOTATION).cloned()
}

/// Whether the task recorded in `status.failedTask` still holds the request back: it failed at
/// this generation and retry annotation. Otherwise the record goes (with an Event saying what is
/// tried again, and why) and the request proceeds.
async fn held_back_by_failed_task(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    status: &mut MachineRequestStatus,
    ctx: &Context,
) -> bool {
    let Some(failed) = &status.failed_task else {
        return false;
    };
    let generation = request.metadata.generation.unwrap_or_default();
    let annotation = retry_annotation(request);
    if failed.observed_generation == generation && failed.retry_annotation == annotation {
        return true;
    }
    let why = if failed.observed_generation != generation {
        format!("the spec changed (generation {generation})")
    } else {
        format!("the {} annotation changed", super::RETRY_ANNOTATION)
    };
    let what = describe_task(&TaskRef {
        upid: failed.upid.clone(),
        task_type: failed.task_type.clone(),
    });
    status.failed_task = None;
    scope
        .event(
            ctx,
            EventType::Normal,
            "Retrying",
            &format!("{why}: trying again what failed before ({what})"),
        )
        .await;
    false
}

/// The object reference of a request, for triggers.
pub fn object_ref(request: &MachineRequest) -> ObjectRef<MachineRequest> {
    ObjectRef::new(&request.name_any()).within(&request.namespace().unwrap_or_default())
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
