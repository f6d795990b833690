//! The table: each feature, the privileges Proxmox VE 8 checks for it, and the ACL path.

use super::{Need, VmScope};

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
}

impl Scope {
    fn path(&self, vm_scope: &VmScope) -> String {
        match self {
            Scope::Vm => vm_scope.path(),
            Scope::SpecificVm(Some(vmid)) => format!("/vms/{vmid}"),
            Scope::SpecificVm(None) => "/vms".to_string(),
            Scope::Storage(id) => format!("/storage/{id}"),
            Scope::Bridge(bridge, None) => format!("/sdn/zones/localnetwork/{bridge}"),
            Scope::Bridge(bridge, Some(vlan)) => format!("/sdn/zones/localnetwork/{bridge}/{vlan}"),
            Scope::Nodes => "/nodes".to_string(),
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
    /// Reading the VM's IP addresses from the QEMU guest agent.
    GuestAgent,
    /// Start, shutdown, stop, reboot.
    Power,
    /// Destroying the VM (deletionPolicy: Delete).
    Delete,
}

/// Where Proxmox versions differ from what the table says (it describes PVE 8.x).
pub const VERSION_NOTES: &[(&str, &str)] = &[
    (
        "VM.Monitor",
        "PVE 9 removes VM.Monitor; the guest agent's network-get-interfaces needs VM.GuestAgent.Audit there.",
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

impl Feature {
    /// Every feature, with placeholders for the storages and bridges a request would name.
    pub fn all_with_placeholders() -> Vec<Feature> {
        vec![
            Feature::Inventory,
            Feature::PlacementByFreeMemory,
            Feature::Create,
            Feature::Cpu,
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
            Feature::GuestAgent => "IP addresses from the guest agent".into(),
            Feature::Power => "power control (start, shutdown, stop)".into(),
            Feature::Delete => "deleting VMs".into(),
        }
    }

    /// The privileges Proxmox VE 8 checks for this feature, with their scopes.
    pub fn privileges(&self) -> Vec<(&'static str, Scope)> {
        match self {
            Feature::Inventory => vec![("VM.Audit", Scope::Vm)],
            Feature::PlacementByFreeMemory => vec![("Sys.Audit", Scope::Nodes)],
            Feature::Create | Feature::Delete => vec![("VM.Allocate", Scope::Vm)],
            Feature::Cpu => vec![("VM.Config.CPU", Scope::Vm)],
            Feature::Memory => vec![("VM.Config.Memory", Scope::Vm)],
            Feature::Hardware => vec![("VM.Config.HWType", Scope::Vm)],
            Feature::Options => vec![("VM.Config.Options", Scope::Vm)],
            Feature::Disk { storage } | Feature::EfiDisk { storage } => vec![
                ("VM.Config.Disk", Scope::Vm),
                ("Datastore.AllocateSpace", Scope::Storage(storage.clone())),
            ],
            Feature::Nic { bridge, vlan } => vec![
                ("VM.Config.Network", Scope::Vm),
                ("SDN.Use", Scope::Bridge(bridge.clone(), *vlan)),
            ],
            // check_volume_access accepts Datastore.AllocateSpace or Datastore.Audit on the ISO's
            // storage; Audit is the one that cannot allocate anything.
            Feature::IsoCdrom { storage } => vec![
                ("VM.Config.CDROM", Scope::Vm),
                ("Datastore.Audit", Scope::Storage(storage.clone())),
            ],
            Feature::CloudInit { storage } => vec![
                ("VM.Config.Cloudinit", Scope::Vm),
                ("VM.Config.CDROM", Scope::Vm),
                ("Datastore.AllocateSpace", Scope::Storage(storage.clone())),
            ],
            Feature::CloneTemplate {
                template,
                target_storage,
            } => vec![
                ("VM.Clone", Scope::SpecificVm(*template)),
                (
                    "Datastore.AllocateSpace",
                    Scope::Storage(
                        target_storage
                            .clone()
                            .unwrap_or_else(|| "<template's storage>".into()),
                    ),
                ),
            ],
            Feature::GuestAgent => vec![("VM.Monitor", Scope::Vm)],
            Feature::Power => vec![("VM.PowerMgmt", Scope::Vm)],
        }
    }

    /// The privileges with their ACL paths resolved for `vm_scope`.
    pub fn needs(&self, vm_scope: &VmScope) -> Vec<Need> {
        self.privileges()
            .into_iter()
            .map(|(privilege, scope)| Need {
                privilege,
                path: scope.path(vm_scope),
                needed_for: self.describe(),
            })
            .collect()
    }
}
