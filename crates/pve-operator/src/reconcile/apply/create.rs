//! Phase 2b: creating the request's VM. VMID and node are chosen and recorded in status before
//! the create is sent, and the create itself carries the marker, so a crash at any point finds
//! the VM again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use pve_client::ErrorKind;
use pve_operator_api::Phase;

use super::super::error::ReconcileError;
use super::super::status::types;
use super::super::task_kind::TaskKind;
use super::super::validate;
use super::Pass;
use super::find::fresh_inventory;
use crate::placement::devices::{self, Resolved};
use crate::placement::{NodeLoad, choose_node};
use crate::privileges::{self, Step};
use crate::proxmox::{Handoff, Snapshot};
use crate::vmspec::Desired;

impl Pass<'_> {
    /// Creates the VM (or clones its template), reusing `snapshot` when this pass read one.
    pub(super) async fn create(
        &mut self,
        desired: &Desired,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<Action, ReconcileError> {
        let (conn, scope) = (self.conn, self.scope);
        let spec = &self.request.spec;
        // The nodes that have every image the request uses (it waits while there are none).
        let (present_on, images) = match self.images(true).await {
            Ok(images) => (images.present_on, images.named),
            Err(done) => return done,
        };
        // Nothing is created that Proxmox would refuse to create, configure, start or delete.
        privileges::require_with_images(conn, spec, &images, Step::Create).await?;
        // Placement and VMID allocation need a current view: the one this reconcile just read,
        // or a new one.
        let snapshot = match snapshot {
            Some(snapshot) => snapshot,
            None => fresh_inventory(conn).await?,
        };

        let template = validate::template(spec, &snapshot)?.cloned();
        // Only nodes where every passthrough device's mapping has a device.
        let devices =
            devices::resolve(spec, &conn.node_facts)
                .await
                .map_err(ReconcileError::proxmox(
                    "reading the PCI and USB resource mappings",
                ))?;
        let node = self.choose_node(template.as_ref(), &snapshot, &devices, present_on.as_ref())?;
        if let Some(nodes) = &present_on
            && !nodes.contains(&node)
        {
            let message = format!(
                "waiting for the request's images on node {node} (they are on: {})",
                nodes.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            return Ok(self.wait_for_image("ImagePending", message));
        }
        // Everything Proxmox can tell about the spec, before a VMID is recorded or a task sent.
        validate::before_create(
            spec,
            desired,
            conn,
            &snapshot,
            &node,
            template.as_ref(),
            scope,
        )
        .await?;
        // A slot on the node first: a VMID is recorded only for a create about to be sent.
        let slot = self.reserve_slot(&node)?;
        if template.is_none() && self.status.node.as_ref() != Some(&node) {
            // A new placement: count it until the inventory can show it.
            conn.placements
                .record(&node, spec.memory.size_mib.saturating_mul(1 << 20));
        }
        let vmid = self.choose_vmid(&snapshot).await?;

        // Record the choice first (a crash after this point reuses the same VMID).
        conn.first_looks.forget(&scope.marker.uid);
        self.status.vmid = Some(vmid);
        self.status.node = Some(node.clone());
        self.status.phase = Some(Phase::Provisioning);
        let creating = format!("creating VM {vmid} on node {node}");
        self.condition(types::PROVISIONED, false, "Creating", creating.clone());
        self.condition(types::READY, false, "Provisioning", creating.clone());
        scope.status.write(self.status).await?;

        let sent = match &template {
            Some(t) => {
                let options = desired.clone_options(vmid)?;
                conn.pve
                    .qemu_clone(&node, t.vmid, &options)
                    .await
                    .map(|u| (u, TaskKind::Clone))
            }
            None => conn
                .pve
                .qemu_create(&node, vmid, desired.create_params()?, false)
                .await
                .map(|u| (u, TaskKind::Create)),
        };
        match sent {
            Ok((upid, kind)) => {
                let made = Handoff::created(vmid, &node, &scope.vm_name);
                conn.handoffs.leave(&scope.marker.uid, &upid, made);
                self.event(EventType::Normal, "Creating", &creating).await;
                Ok(self.start_task(upid, kind, slot))
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                // Someone took the VMID between our check and the create: pick another next time.
                conn.vmids.mark_taken(vmid).await;
                self.status.vmid = None;
                let note = format!("VMID {vmid} was taken meanwhile; choosing another");
                self.event(EventType::Normal, "VmidTaken", &note).await;
                Ok(Action::requeue(Duration::from_millis(100)))
            }
            Err(error) => {
                // A lock Proxmox could not take in time: the node's window shrinks.
                conn.tasks.call_failed(&node, &error.to_string());
                Err(ReconcileError::Proxmox {
                    action: creating,
                    source: error,
                })
            }
        }
    }

    /// The node to create on: a clone is made on its template's node; otherwise the node
    /// recorded earlier while it is online, or placement's choice. Each must have the
    /// request's passthrough devices (`devices`); with images, only nodes that have them
    /// (`with_images`) are candidates.
    fn choose_node(
        &self,
        template: Option<&crate::proxmox::VmEntry>,
        snapshot: &Snapshot,
        devices: &Resolved,
        with_images: Option<&BTreeSet<String>>,
    ) -> Result<String, ReconcileError> {
        let conn = self.conn;
        let device_nodes = devices::nodes_with_devices(devices)?;
        let has_devices = |node: &str| device_nodes.as_ref().is_none_or(|n| n.contains(node));
        Ok(match (template, &self.status.node) {
            (Some(t), _) if !has_devices(&t.node) => {
                return Err(devices::explain(devices, Some(&t.node)).into());
            }
            (Some(t), _) => t.node.clone(),
            (None, Some(recorded))
                if snapshot.nodes.get(recorded).is_some_and(|n| n.online)
                    && has_devices(recorded) =>
            {
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
                let allowed = match (self.scope.policy.allowed_nodes(), with_images) {
                    (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
                    (a, b) => a.or_else(|| b.cloned()),
                };
                let spec = &self.request.spec;
                if let (Some(pinned), Some(nodes)) = (
                    spec.placement.as_ref().and_then(|p| p.node.as_ref()),
                    with_images,
                ) && !nodes.contains(pinned)
                {
                    // The pinned node is checked by the caller (it waits for the images there).
                    return Ok(pinned.clone());
                }
                let Some(with_devices) = &device_nodes else {
                    return choose_node(spec, snapshot, &load, allowed.as_ref())
                        .map_err(ReconcileError::Placement);
                };
                let narrowed: BTreeSet<String> = match &allowed {
                    Some(a) => a.intersection(with_devices).cloned().collect(),
                    None => with_devices.clone(),
                };
                match choose_node(spec, snapshot, &load, Some(&narrowed)) {
                    Ok(node) => node,
                    // Placement would succeed but for the devices: say which.
                    Err(_) if choose_node(spec, snapshot, &load, allowed.as_ref()).is_ok() => {
                        return Err(devices::explain(devices, None).into());
                    }
                    Err(why) => return Err(ReconcileError::Placement(why)),
                }
            }
        })
    }

    /// The VMID to create: the one recorded earlier while it is free, or a new one from the
    /// identity's range.
    async fn choose_vmid(&self, snapshot: &Snapshot) -> Result<u32, ReconcileError> {
        let conn = self.conn;
        match self.status.vmid {
            Some(id) if !snapshot.vms.contains_key(&id) => {
                let free = conn
                    .pve
                    .vmid_is_free(id)
                    .await
                    .map_err(ReconcileError::proxmox(format!(
                        "checking whether VMID {id} is free"
                    )))?;
                if !free {
                    // Taken, yet not in the inventory: a VM this token cannot see, which may be
                    // the one it created (without VM.Audit every VM is invisible). Allocating
                    // another VMID here would create a VM on every pass; stop and say why.
                    return Err(ReconcileError::InvisibleVm(id));
                }
                Ok(id)
            }
            _ => Ok(conn
                .vmids
                .allocate(&conn.pve, snapshot, self.scope.policy.vmid_range()?)
                .await?),
        }
    }
}
