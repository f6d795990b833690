//! Validation before any side effect: everything that Proxmox itself can tell about a spec is
//! checked before a VMID is recorded and before a create or a clone is sent, on every boot path
//! (the storages exist on the node and hold the content they are used for, the ISO exists, the
//! bridges exist on the node, the pool exists), each refusal naming the `spec.` field.
//! What the allow-lists say is checked by [`crate::tenancy::Policy`] before this.

use std::collections::BTreeSet;
use std::fmt;

use pve_client::PveError;
use pve_operator_api::MachineRequestSpec;

use super::RequestScope;
use super::error::ReconcileError;
use crate::proxmox::inventory::NodeEntry;
use crate::proxmox::{ClusterRuntime, Snapshot, VmEntry};
use crate::vmspec::Desired;

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
    if let Some(tpm) = &spec.firmware.tpm_state {
        uses.push(StorageUse {
            field: "spec.firmware.tpmState.storage".into(),
            storage: tpm.storage.clone(),
            content: "images",
        });
    }
    uses
}

fn proxmox(action: String) -> impl FnOnce(PveError) -> ReconcileError {
    ReconcileError::proxmox(action)
}

/// Checks `spec` (and `desired`, the VM it describes) against Proxmox for a VM about to be made on `node` (from `template` when it is
/// a clone), and against the request's allow-lists for what only Proxmox can tell (a template's
/// VMID and name, its node, the storages of its disks). For a clone it reads the template's
/// config and plans the first update against it, so that a spec the clone could never match
/// (a disk smaller than the template's, say) is refused before the clone; the node's storages,
/// bridges and ISOs are read through the connection's short-lived cache.
pub async fn before_create(
    spec: &MachineRequestSpec,
    desired: &Desired,
    conn: &ClusterRuntime,
    snapshot: &Snapshot,
    node: &str,
    template: Option<&VmEntry>,
    scope: &RequestScope<'_>,
) -> Result<(), ReconcileError> {
    let policy = &scope.policy;
    if let Some(entry) = snapshot.nodes.get(node) {
        fits_node(spec, entry)?;
    }
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
        let plan = desired.plan_update(&config)?;
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
        && !snapshot.pools.contains(pool)
    {
        // No pool listed at all: none exists, or the credentials see none. Their privileges
        // tell which.
        let audits = if snapshot.pools.is_empty() {
            let path = format!("/pool/{pool}");
            conn.permissions
                .on_path(&conn.pve, &path)
                .await
                .map_err(proxmox(format!("reading the privileges on {path}")))?
                .map(|held| held.contains_key("Pool.Audit"))
        } else {
            Some(true)
        };
        check_pool(pool, &snapshot.pools, audits)?;
    }
    Ok(())
}

/// Checks that `pool` is one of the `visible` pools when the credentials would see it if it
/// existed (`audits`: they hold Pool.Audit on it; `None`: Proxmox cannot tell). Pools appear in
/// `/cluster/resources` only with Pool.Audit, so without it Proxmox itself decides at create.
pub(crate) fn check_pool(
    pool: &str,
    visible: &BTreeSet<String>,
    audits: Option<bool>,
) -> Result<(), ValidationError> {
    if visible.contains(pool) || audits != Some(true) {
        return Ok(());
    }
    Err(ValidationError::missing(
        "spec.pool",
        format!(
            "{pool:?} is not a pool the controller's token can see (pools it sees: {}); create it, or grant Pool.Audit on /pool/{pool}",
            if visible.is_empty() {
                "none".to_string()
            } else {
                visible.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        ),
    ))
}

/// Checks that the VM fits its node at all: Proxmox creates a VM with more vCPUs (cores ×
/// sockets) than the node has CPUs, then refuses every start (`MAX n vcpus allowed per VM on
/// this node`), and a VM with more memory than the node has in total can never run there.
/// Known only when the credentials see the node's statistics (Sys.Audit); otherwise Proxmox's
/// own refusal at start is reported.
pub(crate) fn fits_node(
    spec: &MachineRequestSpec,
    node: &NodeEntry,
) -> Result<(), ValidationError> {
    let vcpus = u64::from(spec.cpu.cores) * u64::from(spec.cpu.sockets);
    if let Some(cpus) = node.max_cpu
        && vcpus > u64::from(cpus)
    {
        return Err(ValidationError::unsuitable(
            "spec.cpu",
            format!(
                "{} cores × {} sockets = {vcpus} vCPUs, but node {} has {cpus} CPUs, and Proxmox starts no VM with more vCPUs than its node has; ask for at most {cpus}",
                spec.cpu.cores, spec.cpu.sockets, node.name
            ),
        ));
    }
    let wanted = spec.memory.size_mib.saturating_mul(1 << 20);
    if let Some(memory) = node.max_memory
        && wanted > memory
    {
        return Err(ValidationError::unsuitable(
            "spec.memory.sizeMiB",
            format!(
                "{} MiB is more than node {} has in all ({} MiB), so the VM could never run there",
                spec.memory.size_mib,
                node.name,
                memory >> 20
            ),
        ));
    }
    Ok(())
}

/// The template a request clones, found before anything is cloned: a VMID or name that no
/// visible VM has is missing, and one that is a VM but not a template is refused, each naming
/// the field.
pub fn template<'a>(
    spec: &MachineRequestSpec,
    snapshot: &'a Snapshot,
) -> Result<Option<&'a VmEntry>, ValidationError> {
    let Some(wanted) = &spec.boot.template else {
        return Ok(None);
    };
    if let Some(found) = snapshot.find_template(wanted.vmid, wanted.name.as_deref()) {
        return Ok(Some(found));
    }
    let (field, vm, named) = match (&wanted.vmid, &wanted.name) {
        (Some(vmid), _) => (
            "spec.boot.template.vmid",
            snapshot.vms.get(vmid),
            vmid.to_string(),
        ),
        (None, Some(name)) => (
            "spec.boot.template.name",
            snapshot.vms.values().find(|vm| &vm.name == name),
            format!("{name:?}"),
        ),
        (None, None) => {
            return Err(ValidationError::missing(
                "spec.boot.template",
                "names no template; give its vmid or its name",
            ));
        }
    };
    Err(match vm {
        Some(vm) => ValidationError::unsuitable(
            field,
            format!(
                "VM {} ({:?}) is not a template; convert it to a template in Proxmox or name a template",
                vm.vmid, vm.name
            ),
        ),
        None => ValidationError::missing(
            field,
            format!(
                "{named} is not a template the controller's token can see; name an existing template, or grant VM.Audit on it"
            ),
        ),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cpu: serde_json::Value, memory_mib: u64) -> MachineRequestSpec {
        serde_json::from_value(serde_json::json!({
            "cpu": cpu,
            "memory": { "sizeMiB": memory_mib },
            "boot": { "network": {} },
        }))
        .expect("spec")
    }

    fn node(cpus: Option<u32>, memory_gib: Option<u64>) -> NodeEntry {
        NodeEntry {
            name: "pve".into(),
            online: true,
            max_memory: memory_gib.map(|g| g << 30),
            used_memory: Some(0),
            max_cpu: cpus,
        }
    }

    #[test]
    fn a_vm_with_more_vcpus_than_its_node_has_cpus_is_refused_naming_spec_cpu() {
        let sixteen = node(Some(16), Some(64));
        assert!(
            fits_node(
                &spec(serde_json::json!({ "cores": 8, "sockets": 2 }), 512),
                &sixteen
            )
            .is_ok()
        );
        for cpu in [
            serde_json::json!({ "cores": 17 }),
            serde_json::json!({ "cores": 512, "sockets": 4 }),
            serde_json::json!({ "cores": 5, "sockets": 4 }),
        ] {
            let error = fits_node(&spec(cpu.clone(), 512), &sixteen).expect_err("refused");
            assert_eq!(error.field, "spec.cpu", "{cpu}");
            assert_eq!(error.reason(), "UnsuitableInProxmox");
            assert!(
                error.problem.contains("node pve has 16 CPUs"),
                "{}",
                error.problem
            );
        }
    }

    #[test]
    fn a_vm_with_more_memory_than_its_node_has_is_refused_naming_the_size() {
        let small = node(Some(16), Some(64));
        assert!(fits_node(&spec(serde_json::json!({}), 65_536), &small).is_ok());
        let error = fits_node(&spec(serde_json::json!({}), 65_537), &small).expect_err("refused");
        assert_eq!(error.field, "spec.memory.sizeMiB");
        assert!(error.problem.contains("65536 MiB"), "{}", error.problem);
        let huge = spec(serde_json::json!({}), 4_194_304);
        assert!(fits_node(&huge, &small).is_err());
    }

    #[test]
    fn a_pool_that_does_not_exist_is_refused_even_when_there_are_no_pools() {
        let none = BTreeSet::new();
        let error = check_pool("ghost", &none, Some(true)).expect_err("refused");
        assert_eq!(
            (error.field.as_str(), error.reason()),
            ("spec.pool", "NotFoundInProxmox")
        );
        assert!(
            error.problem.contains("pools it sees: none"),
            "{}",
            error.problem
        );
        let some: BTreeSet<String> = ["team-a".to_string()].into();
        assert!(check_pool("team-a", &some, Some(true)).is_ok());
        assert!(check_pool("ghost", &some, Some(true)).is_err());
        // Without Pool.Audit (or without a way to tell), the pool may exist unseen.
        assert!(check_pool("unseen", &none, Some(false)).is_ok());
        assert!(check_pool("unseen", &none, None).is_ok());
    }

    fn vm(vmid: u32, name: &str, template: bool) -> VmEntry {
        VmEntry {
            vmid,
            node: "pve".into(),
            name: name.into(),
            status: "stopped".into(),
            tags: Vec::new(),
            lock: None,
            template,
        }
    }

    fn clone_of(template: serde_json::Value) -> MachineRequestSpec {
        serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": 512 },
            "boot": { "template": template },
        }))
        .expect("spec")
    }

    #[test]
    fn a_template_is_found_by_vmid_or_name_and_anything_else_is_refused_naming_the_field() {
        let snapshot = Snapshot {
            vms: [vm(9000, "debian-12", true), vm(8000, "plain-vm", false)]
                .into_iter()
                .map(|v| (v.vmid, v))
                .collect(),
            ..Snapshot::default()
        };
        let found = |t| template(&clone_of(t), &snapshot).map(|v| v.map(|v| v.vmid));
        assert_eq!(found(serde_json::json!({ "vmid": 9000 })), Ok(Some(9000)));
        assert_eq!(
            found(serde_json::json!({ "name": "debian-12" })),
            Ok(Some(9000))
        );
        for (wanted, field, reason) in [
            (
                serde_json::json!({ "vmid": 424242 }),
                "spec.boot.template.vmid",
                "NotFoundInProxmox",
            ),
            (
                serde_json::json!({ "name": "ghost" }),
                "spec.boot.template.name",
                "NotFoundInProxmox",
            ),
            (
                serde_json::json!({ "vmid": 8000 }),
                "spec.boot.template.vmid",
                "UnsuitableInProxmox",
            ),
            (
                serde_json::json!({ "name": "plain-vm" }),
                "spec.boot.template.name",
                "UnsuitableInProxmox",
            ),
        ] {
            let error = found(wanted.clone()).expect_err("refused");
            assert_eq!(
                (error.field.as_str(), error.reason()),
                (field, reason),
                "{wanted}"
            );
        }
        let network = spec(serde_json::json!({}), 512);
        assert_eq!(template(&network, &snapshot), Ok(None));
    }

    #[test]
    fn without_node_statistics_proxmox_decides() {
        let unknown = node(None, None);
        let huge = spec(serde_json::json!({ "cores": 512, "sockets": 4 }), 4_194_304);
        assert!(fits_node(&huge, &unknown).is_ok());
    }
}
