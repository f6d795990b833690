//! Validation before any side effect: everything that Proxmox itself can tell about a spec is
//! checked before a VMID is recorded and before a create or a clone is sent, on every boot path
//! (the storages exist on the node and hold the content they are used for, the ISO exists, the
//! bridges exist on the node, the pool exists), each refusal naming the `spec.` field.
//! What the allow-lists say is checked by [`crate::tenancy::Policy`] before this.

use std::fmt;

use pve_client::PveError;
use pve_operator_api::MachineRequestSpec;

use super::RequestScope;
use super::error::ReconcileError;
use crate::proxmox::{Connection, Snapshot, VmEntry};

/// A spec names something Proxmox does not have, or has but cannot use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The field, e.g. `spec.disks[1].storage`.
    pub field: String,
    /// What is wrong, e.g. `"nfs" is not a storage of node pve1 (its storages: local, local-lvm)`.
    pub problem: String,
    reason: &'static str,
}

impl ValidationError {
    fn missing(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            reason: "NotFoundInProxmox",
        }
    }

    fn unsuitable(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            reason: "UnsuitableInProxmox",
        }
    }

    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ValidationError {}

/// One use of a storage by the spec.
struct StorageUse {
    field: String,
    storage: String,
    /// The content type the use needs (`images`, `iso`).
    content: &'static str,
}

/// The storages a spec uses on its node, with the field that names each. A clone's disks that
/// come from its template stay where they are; new disks, the cloud-init and EFI drives and a
/// full clone's target storage are allocated.
fn storage_uses(spec: &MachineRequestSpec, template_disk_storages: &[String]) -> Vec<StorageUse> {
    let mut uses = Vec::new();
    for (i, disk) in spec.disks.iter().enumerate() {
        uses.push(StorageUse {
            field: format!("spec.disks[{i}].storage"),
            storage: disk.storage.clone(),
            content: "images",
        });
    }
    if let Some(iso) = &spec.boot.iso {
        uses.push(StorageUse {
            field: "spec.boot.iso.volume".into(),
            storage: iso.volume.split(':').next().unwrap_or_default().to_string(),
            content: "iso",
        });
    }
    if let Some(template) = &spec.boot.template {
        match (&template.storage, template.full) {
            (Some(storage), true) => uses.push(StorageUse {
                field: "spec.boot.template.storage".into(),
                storage: storage.clone(),
                content: "images",
            }),
            _ => {
                for storage in template_disk_storages {
                    uses.push(StorageUse {
                        field: "spec.boot.template (a disk of the template)".into(),
                        storage: storage.clone(),
                        content: "images",
                    });
                }
            }
        }
    }
    if let Some(cloud_init) = &spec.cloud_init
        && let Some(storage) = &cloud_init.storage
    {
        uses.push(StorageUse {
            field: "spec.cloudInit.storage".into(),
            storage: storage.clone(),
            content: "images",
        });
    }
    if let Some(efi) = &spec.firmware.efi_disk {
        uses.push(StorageUse {
            field: "spec.firmware.efiDisk.storage".into(),
            storage: efi.storage.clone(),
            content: "images",
        });
    }
    uses
}

fn proxmox(action: String) -> impl FnOnce(PveError) -> ReconcileError {
    ReconcileError::proxmox(action)
}

/// Checks `spec` against Proxmox for a VM about to be made on `node` (from `template` when it is
/// a clone), and against the request's allow-lists for what only Proxmox can tell (a template's
/// VMID and name, its node, the storages of its disks). For a clone it reads the template's
/// config and plans the first update against it, so that a spec the clone could never match
/// (a disk smaller than the template's, say) is refused before the clone; the node's storages,
/// bridges and ISOs are read through the connection's short-lived cache.
pub async fn before_create(
    spec: &MachineRequestSpec,
    conn: &Connection,
    snapshot: &Snapshot,
    node: &str,
    template: Option<&VmEntry>,
    scope: &RequestScope<'_>,
) -> Result<(), ReconcileError> {
    let policy = &scope.policy;
    let mut template_disk_storages = Vec::new();
    if let (Some(wanted), Some(found)) = (&spec.boot.template, template) {
        policy.check_template(found.vmid, &found.name, wanted.vmid.is_some())?;
        policy.check_node("spec.boot.template (the template's node)", &found.node)?;
        let config = conn
            .pve
            .qemu_config(&found.node, found.vmid)
            .await
            .map_err(proxmox(format!(
                "reading the config of template {}",
                found.vmid
            )))?;
        if !(wanted.full && wanted.storage.is_some()) {
            for (_, storage) in template_disks(&config) {
                if !template_disk_storages.contains(&storage) {
                    template_disk_storages.push(storage);
                }
            }
            for storage in &template_disk_storages {
                policy.check_storage("spec.boot.template (a disk of the template)", storage)?;
            }
        }
        // What the first update after the clone would do, planned now against the template:
        // a spec the clone can never be brought to is refused before anything is cloned.
        let plan = crate::vmspec::plan_update(spec, scope.marker, &scope.vm_name, &config)?;
        if !plan.conflicts.is_empty() {
            return Err(ValidationError::unsuitable(
                "spec.boot.template",
                format!(
                    "a clone of template {} could not be made to match the spec: {}",
                    found.vmid,
                    plan.conflicts.join("; ")
                ),
            )
            .into());
        }
    }
    for StorageUse {
        field,
        storage,
        content,
    } in storage_uses(spec, &template_disk_storages)
    {
        let found = conn
            .node_facts
            .storage(node, &storage)
            .await
            .map_err(proxmox(format!("reading the storages of node {node}")))?;
        let (enabled, active, content_types) = match found {
            Some(info) => (info.enabled, info.active, info.content.clone()),
            None => {
                // Not listed: absent from the node, or invisible to the credentials. Asking for
                // it alone tells which (Proxmox refuses it naming the privilege and path).
                match conn.pve.storage_status(node, &storage).await {
                    Ok(status) => (status.enabled, status.active, status.content),
                    Err(error) if error.kind() == pve_client::ErrorKind::PermissionDenied => {
                        return Err(ReconcileError::Proxmox {
                            action: format!("checking storage {storage} on node {node} ({field})"),
                            source: error,
                        });
                    }
                    Err(_) => {
                        let names = conn
                            .node_facts
                            .storage_names(node)
                            .await
                            .map_err(proxmox(format!("reading the storages of node {node}")))?;
                        return Err(ValidationError::missing(
                            field,
                            format!(
                                "{storage:?} is not a storage of node {node} (its storages: {})",
                                if names.is_empty() {
                                    "none visible".to_string()
                                } else {
                                    names.join(", ")
                                }
                            ),
                        )
                        .into());
                    }
                }
            }
        };
        if enabled == Some(false) || active == Some(false) {
            return Err(ValidationError::unsuitable(
                field,
                format!("storage {storage:?} is disabled or inactive on node {node}"),
            )
            .into());
        }
        if !content_types.split(',').any(|c| c.trim() == content) {
            return Err(ValidationError::unsuitable(
                field,
                format!(
                    "storage {storage:?} on node {node} does not hold {content} (its content types: {content_types}); use a storage that allows {content}"
                ),
            )
            .into());
        }
    }
    if let Some(iso) = &spec.boot.iso {
        let storage = iso.volume.split(':').next().unwrap_or_default();
        let exists = conn
            .node_facts
            .iso_exists(node, storage, &iso.volume)
            .await
            .map_err(proxmox(format!(
                "listing the ISO images of storage {storage} on {node}"
            )))?;
        if !exists {
            return Err(ValidationError::missing(
                "spec.boot.iso.volume",
                format!(
                    "{:?} is not an ISO image on storage {storage} of node {node}; upload it first or fix the name",
                    iso.volume
                ),
            )
            .into());
        }
    }
    for (i, nic) in spec.networks.iter().enumerate() {
        let (exists, names) = conn
            .node_facts
            .bridge(node, &nic.bridge)
            .await
            .map_err(proxmox(format!("reading the network of node {node}")))?;
        if !exists {
            return Err(ValidationError::missing(
                format!("spec.networks[{i}].bridge"),
                format!(
                    "{:?} is not a bridge of node {node} (its bridges: {})",
                    nic.bridge,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
            .into());
        }
    }
    if let Some(pool) = &spec.pool
        && !snapshot.pools.is_empty()
        && !snapshot.pools.contains(pool)
    {
        return Err(ValidationError::missing(
            "spec.pool",
            format!(
                "{pool:?} is not a pool the controller's token can see (pools it sees: {}); create it, or grant Pool.Audit on /pool/{pool}",
                snapshot.pools.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
        .into());
    }
    Ok(())
}

/// Checks what a request's template is before anything is cloned: a VMID or name that is a
/// VM but not a template is refused, with the field.
pub fn template_is_a_template(
    spec: &MachineRequestSpec,
    snapshot: &Snapshot,
) -> Result<(), ValidationError> {
    let Some(template) = &spec.boot.template else {
        return Ok(());
    };
    let (field, found) = match (&template.vmid, &template.name) {
        (Some(vmid), _) => ("spec.boot.template.vmid", snapshot.vms.get(vmid)),
        (None, Some(name)) => (
            "spec.boot.template.name",
            snapshot.vms.values().find(|vm| &vm.name == name),
        ),
        (None, None) => return Ok(()),
    };
    match found {
        Some(vm)
            if !vm.template
                && snapshot
                    .find_template(template.vmid, template.name.as_deref())
                    .is_none() =>
        {
            Err(ValidationError::unsuitable(
                field,
                format!(
                    "VM {} ({:?}) is not a template; convert it to a template in Proxmox or name a template",
                    vm.vmid, vm.name
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The storages of a template's disks (not its CD-ROMs or cloud-init drive), by slot.
fn template_disks(config: &pve_client::api::vmconfig::VmConfigView) -> Vec<(String, String)> {
    config
        .drives()
        .into_iter()
        .filter(|(_, (volume, _))| !volume.contains(":iso/") && !volume.contains("cloudinit"))
        .filter_map(|(slot, (volume, _))| {
            let (storage, _) = volume.split_once(':')?;
            Some((slot.to_string(), storage.to_string()))
        })
        .collect()
}
