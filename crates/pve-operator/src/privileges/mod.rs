//! The Proxmox privileges the controller needs: one table, the single source of truth for the
//! docs, `pve-operator privileges`, `pve-operator preflight` and the `PrivilegesSufficient`
//! condition.
//!
//! [`Feature`] lists everything a MachineRequest can use and everything the controller does on its
//! own; [`Feature::needs`] says which privilege a Proxmox VE release checks for it, and where (from
//! qemu-server's `create_vm` and `$check_vm_modify_config_perm`, pve-guest-common's
//! `check_vnet_access`, pve-storage's `check_volume_access` and the API schema's `permissions`,
//! of 8.4 and of 9.x). A row that holds for some releases only says which ([`Releases`]).
//!
//! Checking credentials against the needs: who they are (`identity`: [`Subject`]), the pure
//! evaluation of needs against held privileges (`evaluate`: [`evaluate()`], [`check()`]), what
//! Proxmox said per path for a while (`cache`: [`PermissionCache`]), and the gate before each
//! step of a MachineRequest (`gate`: [`require`]).

mod cache;
mod docs;
mod evaluate;
mod gate;
mod identity;
mod pveum;
mod table;

pub use cache::{PERMISSION_CACHE_TTL, PermissionCache};
pub use docs::{BEGIN_MARKER, END_MARKER, markdown_table};
pub use evaluate::{Report, Warning, WarningKind, check, concrete_needs, evaluate};
pub use gate::{
    PrivilegeError, Step, log_warnings, missing_needs, missing_privileges, require,
    require_with_images,
};
pub use identity::{Identity, Privsep, Subject};
pub use pveum::{PveumPlan, pveum_plan};
pub use table::{Feature, IMAGE_STORAGE, Releases, Row, Scope, VERSION_NOTES};

use std::collections::BTreeSet;
use std::fmt;

use pve_client::PveRelease;
use pve_operator_api::{
    ImageDeletionPolicy, MachineRequestSpec, PlacementStrategy, ProxmoxImageSpec,
};

/// ProxmoxImages by name, as the requests of one namespace name them.
pub type NamedImages = [(String, ProxmoxImageSpec)];

/// The storage of the image `name` among `images`, or the placeholder when it is not known.
fn image_storage(images: &NamedImages, name: &str) -> String {
    images
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(|| IMAGE_STORAGE.to_string(), |(_, i)| i.storage.clone())
}

/// One privilege needed on one ACL path, and what needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    /// The Proxmox privilege, e.g. `VM.Config.CPU`.
    pub privilege: &'static str,
    /// The ACL path Proxmox checks it on, e.g. `/vms` or `/storage/local-lvm`.
    pub path: String,
    /// What needs it, e.g. `CPU (cores, sockets, type)`.
    pub needed_for: String,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} (for {})",
            self.privilege, self.path, self.needed_for
        )
    }
}

/// Where the controller's VMs live for permission purposes: VM privileges are granted on `/vms`
/// (every VM) or, when the requests use a pool, on `/pool/<pool>` (only the pool's VMs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmScope {
    /// `/vms`, propagating to every VM.
    AllVms,
    /// `/pool/<name>`, applying to the pool's members.
    Pool(String),
}

impl VmScope {
    /// The ACL path of this scope.
    pub fn path(&self) -> String {
        match self {
            VmScope::AllVms => "/vms".to_string(),
            VmScope::Pool(pool) => format!("/pool/{pool}"),
        }
    }
}

/// The features a MachineRequest spec uses, in table order, including what the controller does
/// for every request (inventory reads, create, power, delete).
pub fn features_of(spec: &MachineRequestSpec) -> Vec<Feature> {
    features_with_images(spec, &[])
}

/// Like [`features_of`], with the ProxmoxImages the spec may name (their storages; an image
/// not among them has the placeholder storage).
pub fn features_with_images(spec: &MachineRequestSpec, images: &NamedImages) -> Vec<Feature> {
    let mut features = vec![Feature::Inventory];
    // Free memory matters only when the controller chooses the node by it: a clone is made on
    // its template's node, and a fixed node or the fewest-VMs strategy reads no node statistics.
    let placement = spec.placement.clone().unwrap_or_default();
    if spec.boot.template.is_none()
        && placement.node.is_none()
        && placement.strategy == PlacementStrategy::MostFreeMemory
    {
        features.push(Feature::PlacementByFreeMemory);
    }
    features.extend([Feature::Create, Feature::Cpu]);
    if let Some(model) = spec
        .cpu
        .cpu_type
        .as_deref()
        .and_then(|t| t.strip_prefix("custom-"))
    {
        features.push(Feature::CustomCpu {
            model: model.to_string(),
        });
    }
    features.extend([Feature::Memory, Feature::Hardware, Feature::Options]);
    for disk in &spec.disks {
        features.push(Feature::Disk {
            storage: disk.storage.clone(),
        });
        if let Some(image) = &disk.image {
            features.push(Feature::ImportDisk {
                source_storage: image_storage(images, &image.name),
            });
        }
    }
    for nic in &spec.networks {
        features.push(Feature::Nic {
            bridge: nic.bridge.clone(),
            vlan: nic.vlan,
        });
    }
    if let Some(iso) = &spec.boot.iso {
        let storage = iso.volume.split(':').next().unwrap_or_default().to_string();
        features.push(Feature::IsoCdrom { storage });
    }
    if let Some(image) = &spec.boot.image {
        features.push(Feature::IsoCdrom {
            storage: image_storage(images, &image.name),
        });
    }
    if let Some(template) = &spec.boot.template {
        // Without a target storage a full clone keeps the template's storage, which the spec's
        // disks describe (their first entry is the template's disk, e.g. grown).
        features.push(Feature::CloneTemplate {
            template: template.vmid,
            target_storage: template
                .storage
                .clone()
                .or_else(|| spec.disks.first().map(|d| d.storage.clone())),
        });
    }
    if let Some(cloud_init) = &spec.cloud_init {
        let storage = cloud_init
            .storage
            .clone()
            .or_else(|| spec.disks.first().map(|d| d.storage.clone()))
            .unwrap_or_else(|| "<template's storage>".to_string());
        features.push(Feature::CloudInit { storage });
    }
    if let Some(efi) = &spec.firmware.efi_disk {
        features.push(Feature::EfiDisk {
            storage: efi.storage.clone(),
        });
    }
    if let Some(tpm) = &spec.firmware.tpm_state {
        features.push(Feature::TpmState {
            storage: tpm.storage.clone(),
        });
    }
    for device in &spec.pci_devices {
        features.push(Feature::PciMapping {
            mapping: device.mapping.clone(),
        });
    }
    for device in &spec.usb_devices {
        features.push(Feature::UsbMapping {
            mapping: device.mapping.clone(),
        });
    }
    if spec.guest_agent {
        features.push(Feature::GuestAgent);
    }
    features.push(Feature::Power);
    features.push(Feature::Delete);
    features
}

/// Every privilege the given specs need on `release` (all features with placeholder paths when
/// none is given), deduplicated and sorted by path and privilege.
pub fn needs_for_specs(specs: &[MachineRequestSpec], release: PveRelease) -> Vec<Need> {
    needs_in_scope(specs, release, &VmScope::AllVms)
}

/// Like [`needs_for_specs`], with the VM privileges of the placeholder features (no specs) on
/// `scope`: `/pool/<pool>` for a controller whose VMs all live in one pool.
pub fn needs_in_scope(
    specs: &[MachineRequestSpec],
    release: PveRelease,
    scope: &VmScope,
) -> Vec<Need> {
    needs_with_images(specs, &[], release, scope)
}

/// The needs of the requests' `specs` and of the ProxmoxImages `images` (which the specs may
/// name): downloading each image, removing it under `deletionPolicy: Delete`. With neither,
/// every feature with placeholders, as [`needs_in_scope`].
pub fn needs_with_images(
    specs: &[MachineRequestSpec],
    images: &NamedImages,
    release: PveRelease,
    scope: &VmScope,
) -> Vec<Need> {
    let mut needs = BTreeSet::new();
    if specs.is_empty() && images.is_empty() {
        // Every feature but a custom CPU model and passthrough, which work only with a mapping
        // the admin creates, and the removal of images, which needs Datastore.Allocate: their
        // privileges are granted for the requests and images that use them.
        let features = Feature::all_with_placeholders().into_iter().filter(|f| {
            !matches!(
                f,
                Feature::CustomCpu { .. }
                    | Feature::PciMapping { .. }
                    | Feature::UsbMapping { .. }
                    | Feature::ImageRemoval { .. }
            )
        });
        for feature in features {
            needs.extend(feature.needs(scope, release));
        }
    }
    needs.extend(request_needs(specs, images, release));
    for (_, image) in images {
        let storage = image.storage.clone();
        needs.extend(Feature::ImageDownload { storage }.needs(scope, release));
        if image.deletion_policy == ImageDeletionPolicy::Delete {
            let storage = image.storage.clone();
            needs.extend(Feature::ImageRemoval { storage }.needs(scope, release));
        }
    }
    let mut needs: Vec<Need> = needs.into_iter().collect();
    needs.sort_by(|a, b| (&a.path, a.privilege).cmp(&(&b.path, b.privilege)));
    merge_needed_for(needs)
}

/// The needs of the requests' `specs` alone, each in its own scope (its pool, or every VM):
/// the images they name count only for where they are read from (an ISO's or an import's
/// storage), not for downloading them, which is the ProxmoxImage's own step.
pub fn needs_of_requests(
    specs: &[MachineRequestSpec],
    images: &NamedImages,
    release: PveRelease,
) -> Vec<Need> {
    let needs: BTreeSet<Need> = request_needs(specs, images, release).collect();
    let mut needs: Vec<Need> = needs.into_iter().collect();
    needs.sort_by(|a, b| (&a.path, a.privilege).cmp(&(&b.path, b.privilege)));
    merge_needed_for(needs)
}

/// The unsorted, unmerged needs of the features of `specs`.
fn request_needs(
    specs: &[MachineRequestSpec],
    images: &NamedImages,
    release: PveRelease,
) -> impl Iterator<Item = Need> {
    specs.iter().flat_map(move |spec| {
        let scope = spec
            .pool
            .clone()
            .map(VmScope::Pool)
            .unwrap_or(VmScope::AllVms);
        features_with_images(spec, images)
            .into_iter()
            .flat_map(move |feature| feature.needs(&scope, release))
    })
}

/// Merges entries that differ only in `needed_for` into one whose `needed_for` lists all.
fn merge_needed_for(needs: Vec<Need>) -> Vec<Need> {
    let mut merged: Vec<Need> = Vec::new();
    for need in needs {
        match merged.last_mut() {
            Some(last) if last.privilege == need.privilege && last.path == need.path => {
                if !last.needed_for.split("; ").any(|n| n == need.needed_for) {
                    last.needed_for = format!("{}; {}", last.needed_for, need.needed_for);
                }
            }
            _ => merged.push(need),
        }
    }
    merged
}

/// Privileges that the controller never needs and that make a leaked token dangerous.
pub const DANGEROUS_PRIVILEGES: &[(&str, &str)] = &[
    (
        "Sys.Modify",
        "changes node and cluster settings (network, time, repositories)",
    ),
    ("Sys.Console", "opens a root shell on the node"),
    ("Sys.PowerMgmt", "shuts down or reboots nodes"),
    (
        "Sys.Incoming",
        "accepts incoming migrations and remote data",
    ),
    (
        "Permissions.Modify",
        "grants any privilege to anyone, including itself",
    ),
    ("User.Modify", "creates and changes users and their tokens"),
    ("Realm.Allocate", "changes authentication realms"),
    ("Realm.AllocateUser", "assigns users to realms"),
    ("Group.Allocate", "creates and changes groups"),
    (
        "Datastore.Allocate",
        "creates, changes and removes storages",
    ),
    ("SDN.Allocate", "changes the software-defined network"),
    ("VM.Console", "opens the console of any VM it can see"),
    (
        "Pool.Allocate",
        "creates and removes pools (flagged only when no request uses a pool)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> MachineRequestSpec {
        let mut base = serde_json::json!({
            "memory": { "sizeMiB": 1024 },
            "disks": [{ "slot": "scsi0", "storage": "fast-ssd", "sizeGiB": 8 }],
            "networks": [{ "name": "net0", "bridge": "vmbr1", "vlan": 42 }],
            "boot": { "iso": { "volume": "isos:iso/debian.iso" } },
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).expect("valid spec")
    }

    /// The needs on the newest 9.x checked.
    fn needs9(specs: &[MachineRequestSpec]) -> Vec<Need> {
        needs_for_specs(specs, PveRelease::NEWEST_CHECKED)
    }

    fn has(needs: &[Need], privilege: &str, path: &str) -> bool {
        needs
            .iter()
            .any(|n| n.privilege == privilege && n.path == path)
    }

    #[test]
    fn a_spec_needs_its_storages_bridges_and_vlans_on_their_own_paths() {
        let needs = needs9(&[spec(serde_json::json!({}))]);
        assert!(has(&needs, "Datastore.AllocateSpace", "/storage/fast-ssd"));
        assert!(has(&needs, "SDN.Use", "/sdn/zones/localnetwork/vmbr1/42"));
        assert!(
            has(&needs, "Datastore.Audit", "/storage/isos"),
            "the ISO's storage: {needs:#?}"
        );
        assert!(has(&needs, "VM.Config.CDROM", "/vms"));
        assert!(
            !has(&needs, "VM.Config.Cloudinit", "/vms"),
            "no cloud-init, no cloud-init privilege"
        );
        assert!(
            !has(&needs, "VM.GuestAgent.Audit", "/vms"),
            "no guest agent, no VM.GuestAgent.Audit"
        );
        assert!(
            !needs.iter().any(|n| n.path.contains('<')),
            "no placeholders for a concrete spec"
        );
    }

    #[test]
    fn node_statistics_are_needed_only_when_the_node_is_chosen_by_free_memory() {
        assert!(has(
            &needs9(&[spec(serde_json::json!({}))]),
            "Sys.Audit",
            "/nodes"
        ));
        for extra in [
            serde_json::json!({ "placement": { "node": "pve1" } }),
            serde_json::json!({ "placement": { "strategy": "FewestVMs" } }),
            serde_json::json!({ "boot": { "template": { "name": "tpl" } } }),
        ] {
            let needs = needs9(&[spec(extra.clone())]);
            assert!(!has(&needs, "Sys.Audit", "/nodes"), "{extra}");
        }
    }

    #[test]
    fn a_full_clone_without_target_storage_needs_space_on_the_storage_of_its_disks() {
        let needs = needs9(&[spec(
            serde_json::json!({ "boot": { "template": { "name": "tpl", "full": true } } }),
        )]);
        assert!(has(&needs, "Datastore.AllocateSpace", "/storage/fast-ssd"));
        assert!(!needs.iter().any(|n| n.path.contains('<')), "{needs:#?}");
    }

    #[test]
    fn a_pool_moves_the_vm_privileges_to_the_pool_path() {
        let needs = needs9(&[spec(serde_json::json!({ "pool": "k8s" }))]);
        assert!(has(&needs, "VM.Allocate", "/pool/k8s"));
        assert!(!needs.iter().any(|n| n.path == "/vms"), "{needs:#?}");
    }

    #[test]
    fn the_same_privilege_on_the_same_path_is_listed_once_with_every_reason() {
        let needs = needs9(&[spec(serde_json::json!({}))]);
        let allocate: Vec<_> = needs
            .iter()
            .filter(|n| n.privilege == "VM.Allocate")
            .collect();
        assert_eq!(allocate.len(), 1);
        assert!(
            allocate[0].needed_for.contains("creating VMs")
                && allocate[0].needed_for.contains("deleting VMs")
        );
    }

    #[test]
    fn without_requests_every_feature_is_covered_on_each_release() {
        for (release, agent) in [
            (PveRelease::NEWEST_CHECKED, "VM.GuestAgent.Audit"),
            (PveRelease::PVE_9_0, "VM.GuestAgent.Audit"),
            (PveRelease::PVE_8_4, "VM.Monitor"),
        ] {
            let needs = needs_for_specs(&[], release);
            for privilege in [
                "VM.Clone",
                agent,
                "VM.Config.Cloudinit",
                "Sys.Audit",
                "VM.PowerMgmt",
            ] {
                assert!(
                    needs.iter().any(|n| n.privilege == privilege),
                    "{release}: {privilege} missing"
                );
            }
            for (dangerous, _) in DANGEROUS_PRIVILEGES {
                assert!(
                    !needs.iter().any(|n| n.privilege == *dangerous),
                    "{release}: {dangerous} must never be needed"
                );
            }
        }
    }

    #[test]
    fn a_custom_cpu_model_needs_sys_audit_on_nodes_before_9_1_and_its_mapping_from_9_1() {
        let custom = spec(serde_json::json!({
            "cpu": { "type": "custom-epyc" },
            "placement": { "node": "pve1" },
        }));
        let on = |release| needs_for_specs(std::slice::from_ref(&custom), release);
        for release in [PveRelease::PVE_8_4, PveRelease::PVE_9_0] {
            let needs = on(release);
            assert!(has(&needs, "Sys.Audit", "/nodes"), "{release}: {needs:#?}");
            assert!(
                !needs.iter().any(|n| n.privilege == "Mapping.Use"),
                "{release}"
            );
        }
        let needs = on(PveRelease::new(9, 1));
        assert!(
            has(&needs, "Mapping.Use", "/mapping/cpu/epyc"),
            "{needs:#?}"
        );
        assert!(
            !has(&needs, "Sys.Audit", "/nodes"),
            "a fixed node: {needs:#?}"
        );
        let plain = spec(serde_json::json!({ "cpu": { "type": "host" } }));
        assert!(
            !needs9(&[plain])
                .iter()
                .any(|n| n.privilege == "Mapping.Use")
        );
    }

    #[test]
    fn the_guest_agent_needs_vm_monitor_on_8_4_and_vm_guestagent_audit_on_9() {
        let with_agent = spec(serde_json::json!({ "guestAgent": true }));
        let on = |release| needs_for_specs(std::slice::from_ref(&with_agent), release);
        let pve8 = on(PveRelease::PVE_8_4);
        assert!(has(&pve8, "VM.Monitor", "/vms"), "{pve8:#?}");
        assert!(
            !pve8
                .iter()
                .any(|n| n.privilege.starts_with("VM.GuestAgent"))
        );
        for release in [
            PveRelease::PVE_9_0,
            PveRelease::new(9, 1),
            PveRelease::new(9, 2),
        ] {
            let pve9 = on(release);
            assert!(has(&pve9, "VM.GuestAgent.Audit", "/vms"), "{release}");
            assert!(
                !pve9.iter().any(|n| n.privilege == "VM.Monitor"),
                "{release}"
            );
            assert!(
                !pve9
                    .iter()
                    .any(|n| n.privilege == "VM.GuestAgent.Unrestricted"),
                "{release}: Unrestricted allows exec; never asked for"
            );
        }
        // Everything else is the same on both.
        let others = |needs: Vec<Need>| -> Vec<(&'static str, String)> {
            needs
                .into_iter()
                .filter(|n| !matches!(n.privilege, "VM.Monitor" | "VM.GuestAgent.Audit"))
                .map(|n| (n.privilege, n.path))
                .collect()
        };
        assert_eq!(others(pve8), others(on(PveRelease::NEWEST_CHECKED)));
    }

    #[test]
    fn each_passthrough_device_needs_mapping_use_on_its_mapping_and_hwtype_on_both_releases() {
        let s = spec(serde_json::json!({
            "pciDevices": [{ "mapping": "gpu_a" }],
            "usbDevices": [{ "mapping": "key" }],
        }));
        for release in [PveRelease::PVE_8_4, PveRelease::NEWEST_CHECKED] {
            let needs = needs_for_specs(std::slice::from_ref(&s), release);
            assert!(
                has(&needs, "Mapping.Use", "/mapping/pci/gpu_a"),
                "{release}"
            );
            assert!(has(&needs, "Mapping.Use", "/mapping/usb/key"), "{release}");
            assert!(has(&needs, "VM.Config.HWType", "/vms"), "{release}");
            assert!(
                !needs.iter().any(|n| n.privilege == "Mapping.Modify"),
                "{release}"
            );
        }
        assert!(
            !needs9(&[]).iter().any(|n| n.path.starts_with("/mapping/")),
            "every feature leaves passthrough out: it needs a mapping the admin creates"
        );
    }
}
