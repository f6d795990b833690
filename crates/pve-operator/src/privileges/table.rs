//! The table: each feature, the privileges Proxmox VE checks for it, on which ACL path, and
//! since or until which release. One table for every supported release: a row that holds for
//! only some releases says so ([`Releases`]).

use pve_client::PveRelease;
use pve_client::api::mapping::MappingKind;

use super::{Need, VmScope};

/// The releases a row of the table holds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Releases {
    /// Every supported release.
    All,
    /// Releases before this one (e.g. `VM.Monitor`, gone in 9.0).
    Before(PveRelease),
    /// This release and later.
    From(PveRelease),
}

impl Releases {
    /// Whether the row holds for `release`.
    pub fn include(self, release: PveRelease) -> bool {
        match self {
            Releases::All => true,
            Releases::Before(end) => release < end,
            Releases::From(start) => release >= start,
        }
    }
}

/// One row of the table: a privilege, where Proxmox checks it, and for which releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The privilege, e.g. `VM.Config.CPU`.
    pub privilege: &'static str,
    /// Where it is checked.
    pub scope: Scope,
    /// Which releases check it.
    pub releases: Releases,
}

fn row(privilege: &'static str, scope: Scope) -> Row {
    Row {
        privilege,
        scope,
        releases: Releases::All,
    }
}

/// Where a privilege is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The request's VMs: `/vms` or `/pool/<pool>` (see [`VmScope`]).
    Vm,
    /// A specific VM, e.g. a template: `/vms/<vmid>` (or `/vms` when the id is not known).
    SpecificVm(Option<u32>),
    /// A storage: `/storage/<id>`.
    Storage(String),
    /// A bridge (and VLAN): `/sdn/zones/localnetwork/<bridge>[/<vlan>]`.
    Bridge(String, Option<u16>),
    /// All nodes: `/nodes`.
    Nodes,
    /// A CPU model mapping: `/mapping/cpu/<name>`.
    CpuMapping(String),
    /// A device resource mapping: `/mapping/<kind>/<id>` (kind `pci` or `usb`).
    DeviceMapping(MappingKind, String),
}

impl Scope {
    pub(super) fn path(&self, vm_scope: &VmScope) -> String {
        match self {
            Scope::Vm => vm_scope.path(),
            Scope::SpecificVm(Some(vmid)) => format!("/vms/{vmid}"),
            // Unknown template: every VM when the VM privileges are on /vms anyway; with a pool,
            // only the template (VM.Clone on /vms would let the token clone any VM).
            Scope::SpecificVm(None) => match vm_scope {
                VmScope::AllVms => "/vms".to_string(),
                VmScope::Pool(_) => "/vms/<template vmid>".to_string(),
            },
            Scope::Storage(id) => format!("/storage/{id}"),
            Scope::Bridge(bridge, None) => format!("/sdn/zones/localnetwork/{bridge}"),
            Scope::Bridge(bridge, Some(vlan)) => format!("/sdn/zones/localnetwork/{bridge}/{vlan}"),
            Scope::Nodes => "/nodes".to_string(),
            Scope::CpuMapping(name) => format!("/mapping/cpu/{name}"),
            Scope::DeviceMapping(kind, id) => kind.acl_path(id),
        }
    }
}

/// Something a MachineRequest can use, or something the controller does for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    /// Reading the shared `/cluster/resources` inventory, VM configs and status: the controller
    /// finds its VMs by their marker only where it can see them.
    Inventory,
    /// Choosing a node by free memory (node statistics in `/cluster/resources`).
    PlacementByFreeMemory,
    /// Creating the VM (and, with a pool, creating it in the pool).
    Create,
    /// `cores`, `sockets`, `cpu`.
    Cpu,
    /// A custom CPU model (`cpu.type: custom-<name>`).
    CustomCpu {
        /// The model's name, without `custom-`.
        model: String,
    },
    /// `memory`, `balloon`.
    Memory,
    /// `scsihw`, `machine`, and `smbios1` (which carries the request's UID).
    Hardware,
    /// `name`, `description` and `tags` (which carry the controller's marker), `ostype`, `onboot`,
    /// `bios`, `agent`.
    Options,
    /// A disk on a storage (create, grow).
    Disk {
        /// The storage id.
        storage: String,
    },
    /// A NIC on a bridge, with an optional VLAN tag.
    Nic {
        /// The bridge.
        bridge: String,
        /// The VLAN tag.
        vlan: Option<u16>,
    },
    /// A CD-ROM with an ISO image from a storage.
    IsoCdrom {
        /// The storage holding the ISO.
        storage: String,
    },
    /// The cloud-init drive and its settings.
    CloudInit {
        /// The storage of the cloud-init drive.
        storage: String,
    },
    /// Cloning a template.
    CloneTemplate {
        /// The template's VMID when known.
        template: Option<u32>,
        /// The clone's target storage; the template's own storage when `None`.
        target_storage: Option<String>,
    },
    /// The EFI variables disk (OVMF).
    EfiDisk {
        /// Its storage.
        storage: String,
    },
    /// The TPM state volume (`tpmstate0`).
    TpmState {
        /// Its storage.
        storage: String,
    },
    /// Downloading a ProxmoxImage into a storage (`download-url`), and listing it there.
    ImageDownload {
        /// The image's storage.
        storage: String,
    },
    /// Removing a ProxmoxImage's file (`deletionPolicy: Delete`).
    ImageRemoval {
        /// The image's storage.
        storage: String,
    },
    /// Importing a disk from a ProxmoxImage (`disks[].image`, `import-from`).
    ImportDisk {
        /// The image's storage (the source; the disk's own storage is the disk's feature).
        source_storage: String,
    },
    /// A PCI device passed through by resource mapping (`hostpciN: mapping=<id>`).
    PciMapping {
        /// The mapping ID.
        mapping: String,
    },
    /// A USB device passed through by resource mapping (`usbN: mapping=<id>`).
    UsbMapping {
        /// The mapping ID.
        mapping: String,
    },
    /// Reading the VM's IP addresses from the QEMU guest agent.
    GuestAgent,
    /// Start, shutdown, stop, reboot.
    Power,
    /// Destroying the VM (deletionPolicy: Delete).
    Delete,
}

/// What else to know about the table's privileges across releases.
pub const VERSION_NOTES: &[(&str, &str)] = &[
    (
        "VM.Monitor",
        "PVE 9.0 removed VM.Monitor (a role naming it is refused; an upgraded user.cfg silently drops it); the guest agent's network-get-interfaces needs VM.GuestAgent.Audit there, which PVEVMUser and PVEAuditor have.",
    ),
    (
        "SDN.Use",
        "Checked on /sdn/zones/localnetwork/<bridge> for plain Linux bridges since PVE 8.0; PVE 7 did not check bridges.",
    ),
    (
        "Sys.Audit",
        "Without it on /nodes, /cluster/resources still lists the nodes but without memory figures, so placement by free memory cannot work.",
    ),
];

/// The placeholder of a value that comes from a MachineRequest.
const STORAGE: &str = "<storage>";
const BRIDGE: &str = "<bridge>";
/// The placeholder of a ProxmoxImage's storage.
pub const IMAGE_STORAGE: &str = "<image storage>";

impl Feature {
    /// Every feature, with placeholders for the storages and bridges a request would name.
    pub fn all_with_placeholders() -> Vec<Feature> {
        vec![
            Feature::Inventory,
            Feature::PlacementByFreeMemory,
            Feature::Create,
            Feature::Cpu,
            Feature::CustomCpu {
                model: "<model>".into(),
            },
            Feature::Memory,
            Feature::Hardware,
            Feature::Options,
            Feature::Disk {
                storage: STORAGE.into(),
            },
            Feature::Nic {
                bridge: BRIDGE.into(),
                vlan: None,
            },
            Feature::IsoCdrom {
                storage: "<iso storage>".into(),
            },
            Feature::CloudInit {
                storage: STORAGE.into(),
            },
            Feature::CloneTemplate {
                template: None,
                target_storage: Some(STORAGE.into()),
            },
            Feature::EfiDisk {
                storage: STORAGE.into(),
            },
            Feature::TpmState {
                storage: STORAGE.into(),
            },
            Feature::ImageDownload {
                storage: IMAGE_STORAGE.into(),
            },
            Feature::ImageRemoval {
                storage: IMAGE_STORAGE.into(),
            },
            Feature::ImportDisk {
                source_storage: IMAGE_STORAGE.into(),
            },
            Feature::PciMapping {
                mapping: "<pci mapping>".into(),
            },
            Feature::UsbMapping {
                mapping: "<usb mapping>".into(),
            },
            Feature::GuestAgent,
            Feature::Power,
            Feature::Delete,
        ]
    }

    /// What the feature is, for people.
    pub fn describe(&self) -> String {
        match self {
            Feature::Inventory => "finding and reading its VMs".into(),
            Feature::PlacementByFreeMemory => "placement by free memory".into(),
            Feature::Create => "creating VMs".into(),
            Feature::Cpu => "CPU (cores, sockets, type)".into(),
            Feature::CustomCpu { model } => format!("custom CPU model {model}"),
            Feature::Memory => "memory and balloon".into(),
            Feature::Hardware => "hardware (SCSI controller, machine type, SMBIOS identity)".into(),
            Feature::Options => {
                "options (name, description, tags, OS type, start on boot, firmware, agent)".into()
            }
            Feature::Disk { storage } => format!("disks on storage {storage}"),
            Feature::Nic { bridge, vlan: None } => format!("NICs on bridge {bridge}"),
            Feature::Nic {
                bridge,
                vlan: Some(vlan),
            } => format!("NICs on bridge {bridge} VLAN {vlan}"),
            Feature::IsoCdrom { storage } => format!("ISO CD-ROM from storage {storage}"),
            Feature::CloudInit { .. } => "cloud-init".into(),
            Feature::CloneTemplate { .. } => "cloning a template".into(),
            Feature::EfiDisk { .. } => "EFI disk (OVMF)".into(),
            Feature::TpmState { storage } => format!("TPM state on storage {storage}"),
            Feature::ImageDownload { storage } => {
                format!("downloading images to storage {storage}")
            }
            Feature::ImageRemoval { storage } => {
                format!("removing images from storage {storage} (deletionPolicy: Delete)")
            }
            Feature::ImportDisk { source_storage } => {
                format!("importing disks from images on storage {source_storage}")
            }
            Feature::PciMapping { mapping } => format!("PCI passthrough of mapping {mapping}"),
            Feature::UsbMapping { mapping } => format!("USB passthrough of mapping {mapping}"),
            Feature::GuestAgent => "IP addresses from the guest agent".into(),
            Feature::Power => "power control (start, shutdown, stop)".into(),
            Feature::Delete => "deleting VMs".into(),
        }
    }

    /// Every row of this feature, for every release.
    pub fn rows(&self) -> Vec<Row> {
        match self {
            Feature::Inventory => vec![row("VM.Audit", Scope::Vm)],
            Feature::PlacementByFreeMemory => vec![row("Sys.Audit", Scope::Nodes)],
            Feature::Create | Feature::Delete => vec![row("VM.Allocate", Scope::Vm)],
            Feature::Cpu => vec![row("VM.Config.CPU", Scope::Vm)],
            // qemu-server: reading the custom models needed Sys.Audit on /nodes; since 9.1.13
            // (229a32ed) a custom model is a CPU mapping, checked with Mapping.Use. (9.1.0 to
            // 9.1.12 still check Sys.Audit on /nodes: grant both there.)
            Feature::CustomCpu { model } => vec![
                Row {
                    privilege: "Sys.Audit",
                    scope: Scope::Nodes,
                    releases: Releases::Before(PveRelease::new(9, 1)),
                },
                Row {
                    privilege: "Mapping.Use",
                    scope: Scope::CpuMapping(model.clone()),
                    releases: Releases::From(PveRelease::new(9, 1)),
                },
            ],
            Feature::Memory => vec![row("VM.Config.Memory", Scope::Vm)],
            Feature::Hardware => vec![row("VM.Config.HWType", Scope::Vm)],
            Feature::Options => vec![row("VM.Config.Options", Scope::Vm)],
            Feature::Disk { storage }
            | Feature::EfiDisk { storage }
            | Feature::TpmState { storage } => vec![
                row("VM.Config.Disk", Scope::Vm),
                row("Datastore.AllocateSpace", Scope::Storage(storage.clone())),
            ],
            Feature::Nic { bridge, vlan } => vec![
                row("VM.Config.Network", Scope::Vm),
                row("SDN.Use", Scope::Bridge(bridge.clone(), *vlan)),
            ],
            // check_volume_access accepts Datastore.AllocateSpace or Datastore.Audit on the ISO's
            // storage; Audit is the one that cannot allocate anything.
            Feature::IsoCdrom { storage } => vec![
                row("VM.Config.CDROM", Scope::Vm),
                row("Datastore.Audit", Scope::Storage(storage.clone())),
            ],
            Feature::CloudInit { storage } => vec![
                row("VM.Config.Cloudinit", Scope::Vm),
                row("VM.Config.CDROM", Scope::Vm),
                row("Datastore.AllocateSpace", Scope::Storage(storage.clone())),
            ],
            Feature::CloneTemplate {
                template,
                target_storage,
            } => vec![
                row("VM.Clone", Scope::SpecificVm(*template)),
                row(
                    "Datastore.AllocateSpace",
                    Scope::Storage(
                        target_storage
                            .clone()
                            .unwrap_or_else(|| "<template's storage>".into()),
                    ),
                ),
            ],
            // qemu-server's Agent.pm: every agent call needs VM.Monitor up to 8.4; from 9.0 each
            // command has its own privilege, network-get-interfaces VM.GuestAgent.Audit (or
            // VM.GuestAgent.Unrestricted, which also allows exec: never asked for).
            Feature::GuestAgent => vec![
                Row {
                    privilege: "VM.Monitor",
                    scope: Scope::Vm,
                    releases: Releases::Before(PveRelease::PVE_9_0),
                },
                Row {
                    privilege: "VM.GuestAgent.Audit",
                    scope: Scope::Vm,
                    releases: Releases::From(PveRelease::PVE_9_0),
                },
            ],
            Feature::Power => vec![row("VM.PowerMgmt", Scope::Vm)],
            // The schema of download-url: Datastore.AllocateTemplate on the storage, and
            // Sys.AccessNetwork on the node (the newer of the two alternatives; the older,
            // Sys.Audit + Sys.Modify on /, is never asked for). Listing the storage and its
            // content to find the file needs Datastore.Audit (or AllocateSpace) there.
            Feature::ImageDownload { storage } => vec![
                row(
                    "Datastore.AllocateTemplate",
                    Scope::Storage(storage.clone()),
                ),
                row("Datastore.Audit", Scope::Storage(storage.clone())),
                row("Sys.AccessNetwork", Scope::Nodes),
            ],
            // DELETE .../content/{volume}: Datastore.Allocate on the storage for anything but
            // a backup. It also lets the token change the storage's definition, which is why
            // deletionPolicy Keep is the default.
            Feature::ImageRemoval { storage } => {
                vec![row("Datastore.Allocate", Scope::Storage(storage.clone()))]
            }
            // qemu-server checks the import source with check_volume_access: for an `import`
            // volume Datastore.AllocateSpace or Datastore.Audit; Audit allocates nothing.
            Feature::ImportDisk { source_storage } => {
                vec![row(
                    "Datastore.Audit",
                    Scope::Storage(source_storage.clone()),
                )]
            }
            // qemu-server's check_vm_create_{hostpci,usb}_perm (8.0 and later, unchanged in
            // 9.x): a mapped device needs Mapping.Use on its mapping and VM.Config.HWType.
            Feature::PciMapping { mapping } => vec![
                row("VM.Config.HWType", Scope::Vm),
                row(
                    "Mapping.Use",
                    Scope::DeviceMapping(MappingKind::Pci, mapping.clone()),
                ),
            ],
            Feature::UsbMapping { mapping } => vec![
                row("VM.Config.HWType", Scope::Vm),
                row(
                    "Mapping.Use",
                    Scope::DeviceMapping(MappingKind::Usb, mapping.clone()),
                ),
            ],
        }
    }

    /// The privileges `release` checks for this feature, with their scopes.
    pub fn privileges(&self, release: PveRelease) -> Vec<(&'static str, Scope)> {
        self.rows()
            .into_iter()
            .filter(|r| r.releases.include(release))
            .map(|r| (r.privilege, r.scope))
            .collect()
    }

    /// The privileges `release` checks, with their ACL paths resolved for `vm_scope`.
    pub fn needs(&self, vm_scope: &VmScope, release: PveRelease) -> Vec<Need> {
        let mut privileges = self.privileges(release);
        // A template lies outside the requests' pool: with the VM privileges on the pool only,
        // the controller must also be able to see it (VM.Audit on /vms covers it otherwise).
        if let (Feature::CloneTemplate { template, .. }, VmScope::Pool(_)) = (self, vm_scope) {
            privileges.push(("VM.Audit", Scope::SpecificVm(*template)));
        }
        privileges
            .into_iter()
            .map(|(privilege, scope)| Need {
                privilege,
                path: scope.path(vm_scope),
                needed_for: self.describe(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The privileges a release has, from `shared/pve-reference/builtin-roles.json` (replayed from
    /// pve-access-control's `$privgroups` of 8.4 and 9.x).
    fn privileges_of(key: &str) -> BTreeSet<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/pve-reference/builtin-roles.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "expected {} (shared/pve-reference beside the checkout): {e}",
                path.display()
            )
        });
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        json["privileges"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no privileges.{key} in {}", path.display()))
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn every_row_names_a_privilege_its_releases_have_and_no_release_lacks_a_row() {
        for (release, key, count) in [
            (PveRelease::PVE_8_4, "pve8.4", 42),
            (PveRelease::PVE_9_0, "pve9", 47),
            (PveRelease::NEWEST_CHECKED, "pve9", 47),
        ] {
            let known = privileges_of(key);
            assert_eq!(known.len(), count, "{key}");
            for feature in Feature::all_with_placeholders() {
                let privileges = feature.privileges(release);
                assert!(
                    !privileges.is_empty(),
                    "{release}: {} has no privilege",
                    feature.describe()
                );
                for (privilege, _) in privileges {
                    assert!(
                        known.contains(privilege),
                        "{release}: {} names {privilege}, which Proxmox VE {release} does not have",
                        feature.describe()
                    );
                }
            }
        }
    }
}
