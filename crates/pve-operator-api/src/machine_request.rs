//! `MachineRequest`: one Proxmox VE virtual machine, as it should be.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;
use crate::reserved;

mod firmware;
pub mod passthrough;
pub use firmware::{Bios, EfiDisk, Firmware, TpmState, TpmVersion};
pub use passthrough::{PciDevice, UsbDevice};

/// A Proxmox VE virtual machine, as it should be. The controller creates it, keeps its
/// configuration and power state as specified, and removes it (or, with `deletionPolicy: Retain`,
/// releases it) when the MachineRequest is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pve-operator.dev",
    version = "v1alpha1",
    kind = "MachineRequest",
    namespaced,
    shortname = "mr",
    category = "pve",
    status = "MachineRequestStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.node"}"#,
    printcolumn = r#"{"name":"VMID","type":"integer","jsonPath":".status.vmid"}"#,
    printcolumn = r#"{"name":"CPU","type":"integer","jsonPath":".spec.cpu.cores"}"#,
    printcolumn = r#"{"name":"Memory","type":"integer","description":"memory in MiB","jsonPath":".spec.memory.sizeMiB"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".status.ipAddresses[0]"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "A request for one Proxmox VE virtual machine. See `kubectl explain machinerequest.spec`."
)]
#[x_kube(validation = Rule::new(
    "!has(self.cloudInit) || !has(self.cloudInit.ipConfigs) || self.cloudInit.ipConfigs.all(c, has(self.networks) && self.networks.exists(n, n.name == c.interface))"
).message("every cloudInit.ipConfigs[].interface must name one of spec.networks[].name").field_path(".cloudInit.ipConfigs"))]
#[x_kube(validation = Rule::new("has(self.clusterRef) == has(oldSelf.clusterRef)").message("clusterRef is immutable: it cannot be added or removed after creation").field_path(".clusterRef"))]
#[x_kube(validation = Rule::new("has(self.vmName) == has(oldSelf.vmName)").message("vmName is immutable: it cannot be added or removed after creation").field_path(".vmName"))]
#[x_kube(validation = Rule::new("has(self.placement) == has(oldSelf.placement)").message("placement is immutable: it cannot be added or removed after creation").field_path(".placement"))]
#[x_kube(validation = Rule::new(passthrough::PCIE_NEEDS_Q35_RULE).message(passthrough::PCIE_NEEDS_Q35_MESSAGE).field_path(".pciDevices"))]
#[x_kube(validation = Rule::new("has(self.pool) == has(oldSelf.pool)").message("pool is immutable: it cannot be added or removed after creation").field_path(".pool"))]
#[serde(rename_all = "camelCase")]
pub struct MachineRequestSpec {
    /// The ProxmoxCluster (in this namespace) to create the VM on. When omitted, the controller's
    /// default connection (`pve-operator run --config`) is used. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable: a VM cannot move between Proxmox clusters"))]
    pub cluster_ref: Option<ClusterRef>,

    /// The name of the VM in Proxmox. Defaults to the MachineRequest's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(patterns::DNS_NAME))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("vmName is immutable"))]
    pub vm_name: Option<String>,

    /// Where the VM may run. Without it, any online node with enough free memory is chosen.
    /// Immutable once set (moving a VM is a migration, which this API does not do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("placement is immutable: the VM is not migrated"))]
    pub placement: Option<Placement>,

    /// Virtual CPUs.
    #[serde(default)]
    pub cpu: Cpu,

    /// Memory.
    pub memory: Memory,

    /// Disks, by slot (`scsi0`, `virtio1`, ...). A disk can be added and grown, never shrunk,
    /// moved to another storage or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["slot".into()]))]
    #[x_kube(validation = Rule::new("oldSelf.all(o, self.exists(d, d.slot == o.slot))").message("a disk cannot be removed from a MachineRequest (its data would be lost); delete the MachineRequest or detach the disk in Proxmox"))]
    pub disks: Vec<Disk>,

    /// Network interfaces, by slot (`net0`, `net1`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub networks: Vec<NetworkInterface>,

    /// What the VM boots from: exactly one of an ISO, a template to clone, or the network.
    /// Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("boot is immutable: the boot source is chosen when the VM is created"))]
    pub boot: BootSource,

    /// Cloud-init settings, written to the VM's cloud-init drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init: Option<CloudInit>,

    /// Firmware and machine type.
    #[serde(default)]
    pub firmware: Firmware,

    /// PCI devices passed through by resource mapping: `hostpci0` to `hostpci15`, in list order,
    /// each mapping named once. The VM is placed only on a node where every mapping has a
    /// device. PCI devices cannot be hot-plugged: changes reach a running VM at its next start
    /// (reported in `RestartRequired`, or applied by a restart: `spec.pendingChanges`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(passthrough::UNIQUE_MAPPINGS_RULE).message("each PCI resource mapping may be named once in pciDevices"))]
    pub pci_devices: Vec<PciDevice>,

    /// USB devices passed through by resource mapping: `usb0` to `usb13`, in list order, each
    /// mapping named once. Proxmox hot-plugs them where the VM's hotplug setting allows USB
    /// (its default); otherwise changes reach a running VM at its next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 14))]
    #[x_kube(validation = Rule::new(passthrough::UNIQUE_MAPPINGS_RULE).message("each USB resource mapping may be named once in usbDevices"))]
    pub usb_devices: Vec<UsbDevice>,

    /// Whether the QEMU guest agent is enabled. With it, the VM's IP addresses appear in status.
    #[serde(default)]
    pub guest_agent: bool,

    /// Proxmox tags added to the VM (the controller adds its own marker tags besides). The
    /// controller's tags are reserved: `pve-operator` and every `mr-*` tag, in any letter case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(length(min = 1, max = 64), pattern(patterns::TAG))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new(reserved::NO_RESERVED_TAG_RULE).message(reserved::RESERVED_TAG_MESSAGE))]
    pub tags: Vec<String>,

    /// Free text shown as the VM's notes in Proxmox (the controller appends its marker line).
    /// Lines starting with `pve-operator:` are reserved for that marker; control characters
    /// other than tab and newline are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096), pattern(patterns::FREE_TEXT))]
    #[x_kube(validation = Rule::new(reserved::NO_RESERVED_LINE_RULE).message(reserved::RESERVED_LINE_MESSAGE))]
    pub description: Option<String>,

    /// The Proxmox resource pool the VM joins. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(patterns::POOL_ID))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("pool is immutable"))]
    pub pool: Option<String>,

    /// Whether Proxmox starts the VM when its node boots.
    #[serde(default)]
    pub start_on_boot: bool,

    /// Whether the VM should be running. The controller enforces it.
    #[serde(default)]
    pub power_state: PowerState,

    /// What happens to the VM when the MachineRequest is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// What to do with changes that Proxmox can apply only at the next VM start (for example
    /// fewer cores): report them in the `RestartRequired` condition, or restart the VM.
    #[serde(default)]
    pub pending_changes: PendingChangePolicy,
}

/// A reference to a ProxmoxCluster in the MachineRequest's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    /// Name of the ProxmoxCluster.
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: String,
}

/// Where the VM may be placed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("!(has(self.node) && has(self.allowedNodes))").message("set either node or allowedNodes, not both"))]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Exactly this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(patterns::NODE_NAME))]
    pub node: Option<String>,
    /// One of these nodes, chosen by `strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 63), pattern(patterns::NODE_NAME))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_nodes: Option<Vec<String>>,
    /// How a node is chosen among the candidates.
    #[serde(default)]
    pub strategy: PlacementStrategy,
}

/// How a node is chosen among several candidates.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlacementStrategy {
    /// The online node with the most free memory that can hold the VM.
    #[default]
    MostFreeMemory,
    /// The online node with the fewest VMs that can hold the VM.
    FewestVMs,
}

/// Virtual CPUs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// Cores per socket.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 512))]
    pub cores: u32,
    /// Sockets.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 4))]
    pub sockets: u32,
    /// QEMU CPU model, e.g. `host` or `x86-64-v2-AES` (Proxmox's default when omitted).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(patterns::CPU_TYPE))]
    pub cpu_type: Option<String>,
}

impl Default for Cpu {
    fn default() -> Self {
        Self {
            cores: 1,
            sockets: 1,
            cpu_type: None,
        }
    }
}

fn one() -> u32 {
    1
}

/// Memory.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.balloonMiB) || self.balloonMiB <= self.sizeMiB").message("balloonMiB must not exceed sizeMiB"))]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Memory in MiB.
    #[serde(rename = "sizeMiB")]
    #[schemars(range(min = 16, max = 4194304))]
    pub size_mib: u64,
    /// Minimum memory in MiB for the balloon driver; 0 disables ballooning. Omitted: Proxmox's
    /// default (ballooning on, minimum = size).
    #[serde(
        default,
        rename = "balloonMiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(max = 4194304))]
    pub balloon_mib: Option<u64>,
}

/// One disk.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.sizeGiB >= oldSelf.sizeGiB").message("disks can grow but never shrink").field_path(".sizeGiB"))]
#[x_kube(validation = Rule::new("self.storage == oldSelf.storage").message("a disk's storage is immutable").field_path(".storage"))]
#[x_kube(validation = Rule::new("has(self.image) == has(oldSelf.image) && (!has(self.image) || self.image == oldSelf.image)").message("a disk's image is immutable: it is imported once, when the disk is created").field_path(".image"))]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// Bus and index, e.g. `scsi0`, `virtio0`, `sata1`, `ide0`.
    #[schemars(length(max = 8), pattern(patterns::DISK_SLOT))]
    pub slot: String,
    /// The Proxmox storage to allocate the disk on, e.g. `local-lvm`.
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    pub storage: String,
    /// Size in GiB.
    #[serde(rename = "sizeGiB")]
    #[schemars(range(min = 1, max = 131072))]
    pub size_gib: u64,
    /// Tell the guest it is an SSD.
    #[serde(default)]
    pub ssd: bool,
    /// Pass discard (TRIM) to the storage.
    #[serde(default)]
    pub discard: bool,
    /// A dedicated I/O thread (needs `virtio-scsi-single` for SCSI, which the controller uses).
    #[serde(default)]
    pub iothread: bool,
    /// Cache mode; Proxmox's default (no cache) when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<DiskCache>,
    /// Create the disk by importing a ProxmoxImage of content `import` (a cloud image) in this
    /// namespace, then grow it to `sizeGiB`. The request waits (condition `Ready=False`,
    /// reason `ImagePending`, no VMID taken) until the image is on a node the VM may go to.
    /// Set when the disk is created; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
}

/// A ProxmoxImage in the request's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The ProxmoxImage's name.
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: String,
}

/// QEMU disk cache modes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DiskCache {
    /// No host cache.
    None,
    /// Host page cache, writes reported done once on storage.
    Writethrough,
    /// Host page cache, writes reported done once in cache.
    Writeback,
    /// No host cache, writes reported done once on storage.
    Directsync,
    /// Like writeback, ignoring flushes (data loss on host crash).
    Unsafe,
}

/// One network interface.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    /// The slot, `net0` to `net31`.
    #[schemars(length(max = 5), pattern(patterns::NIC_SLOT))]
    pub name: String,
    /// The bridge (or SDN VNet) to attach to, e.g. `vmbr0`.
    #[schemars(length(min = 1, max = 15), pattern(patterns::BRIDGE))]
    pub bridge: String,
    /// VLAN tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub vlan: Option<u16>,
    /// NIC model.
    #[serde(default)]
    pub model: NicModel,
    /// A fixed MAC address; Proxmox generates one when omitted (and the controller keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 17), pattern(patterns::MAC_ADDRESS))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("a NIC's MAC address is immutable"))]
    pub mac: Option<String>,
    /// Whether the Proxmox firewall applies to this interface.
    #[serde(default)]
    pub firewall: bool,
}

/// Emulated NIC models.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    /// Paravirtualised (best performance; needs virtio drivers).
    #[default]
    Virtio,
    /// Intel E1000.
    E1000,
    /// Intel E1000E.
    E1000e,
    /// Realtek RTL8139.
    Rtl8139,
    /// VMware vmxnet3.
    Vmxnet3,
}

/// What the VM boots from: exactly one of `iso`, `image`, `template` and `network`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new(
    "(has(self.iso) ? 1 : 0) + (has(self.image) ? 1 : 0) + (has(self.template) ? 1 : 0) + (has(self.network) ? 1 : 0) == 1"
).message("set exactly one boot source: iso, image, template or network"))]
#[serde(rename_all = "camelCase")]
pub struct BootSource {
    /// Boot from an ISO image on a Proxmox storage, attached as a CD-ROM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<IsoBoot>,
    /// Boot from a ProxmoxImage of content `iso` in this namespace, attached as a CD-ROM once
    /// it is downloaded. The request waits (condition `Ready=False`, reason `ImagePending`, no
    /// VMID taken) until the image is on a node the VM may go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// Clone a Proxmox template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateClone>,
    /// Boot from the network (PXE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkBoot>,
}

/// Boot from an ISO image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IsoBoot {
    /// The ISO volume, e.g. `local:iso/debian-12.7.0-amd64-netinst.iso`.
    #[schemars(length(max = 255), pattern(patterns::ISO_VOLUME))]
    pub volume: String,
}

/// Clone a template: give its VMID or its name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.vmid) != has(self.name)").message("identify the template by exactly one of vmid or name"))]
#[x_kube(validation = Rule::new("self.full || !has(self.storage)").message("storage applies only to full clones; a linked clone stays on the template's storage"))]
#[serde(rename_all = "camelCase")]
pub struct TemplateClone {
    /// The template's VMID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 999999999))]
    pub vmid: Option<u32>,
    /// The template's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(patterns::DNS_NAME))]
    pub name: Option<String>,
    /// A full (independent) clone, or a linked clone sharing the template's base disk.
    #[serde(default = "yes")]
    pub full: bool,
    /// Target storage for a full clone's disks; the template's storage when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    pub storage: Option<String>,
}

fn yes() -> bool {
    true
}

/// Boot from the network (PXE) through the first NIC.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct NetworkBoot {}

/// Cloud-init settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CloudInit {
    /// Storage for the cloud-init drive; the first disk's storage when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    pub storage: Option<String>,
    /// The user to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), pattern(patterns::UNIX_USER))]
    pub user: Option<String>,
    /// SSH public keys for the user, one key per entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 16384), pattern(patterns::SSH_PUBLIC_KEY))
    )]
    pub ssh_keys: Vec<String>,
    /// IP configuration per NIC; NICs without an entry get no configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["interface".into()]))]
    pub ip_configs: Vec<IpConfig>,
    /// DNS servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3), inner(length(max = 45)))]
    #[x_kube(validation = Rule::new("self.all(s, isIP(s))").message("nameservers must be IP addresses"))]
    pub nameservers: Vec<String>,
    /// DNS search domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_NAME))]
    pub search_domain: Option<String>,
}

/// The IP configuration of one NIC.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.dhcp != has(self.address)").message("set either dhcp: true or a static address, not both or neither"))]
#[x_kube(validation = Rule::new("!has(self.gateway) || has(self.address)").message("a gateway needs a static address"))]
#[serde(rename_all = "camelCase")]
pub struct IpConfig {
    /// The NIC, e.g. `net0` (one of `spec.networks[].name`).
    #[schemars(length(max = 5), pattern(patterns::NIC_SLOT))]
    pub interface: String,
    /// Use DHCP (IPv4).
    #[serde(default)]
    pub dhcp: bool,
    /// Static IPv4 address with prefix length, e.g. `192.0.2.10/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 18))]
    #[x_kube(validation = Rule::new("isCIDR(self) && cidr(self).ip().family() == 4").message("address must be an IPv4 address with prefix length, e.g. 192.0.2.10/24"))]
    pub address: Option<String>,
    /// IPv4 gateway, e.g. `192.0.2.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4").message("gateway must be an IPv4 address"))]
    pub gateway: Option<String>,
}

/// Desired power state.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PowerState {
    /// The VM runs; the controller starts it when it is stopped.
    #[default]
    Running,
    /// The VM is stopped; the controller shuts it down when it runs.
    Stopped,
}

/// What happens to the VM when its MachineRequest is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Stop and destroy the VM with its disks.
    #[default]
    Delete,
    /// Keep the VM; only the controller's marker is removed from it.
    Retain,
}

/// What to do with changes that need a VM restart to take effect.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PendingChangePolicy {
    /// Leave them pending and report them in the `RestartRequired` condition.
    #[default]
    Report,
    /// Restart the VM (a clean shutdown, then a start) to apply them.
    Restart,
}

/// Observed state of a MachineRequest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MachineRequestStatus {
    /// A one-word summary of where the request stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The VM's id in Proxmox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u32>,
    /// The node the VM is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The VM's IP addresses, as its guest agent reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,
    /// The Proxmox task in flight for this VM, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<TaskRef>,
    /// The generation of the spec that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// A Proxmox task that failed for a reason that sending it again cannot fix (no space on
    /// the storage, a missing storage, not enough memory, a privilege checked inside the task).
    /// Nothing more is sent to Proxmox for this request until its spec changes (a new
    /// `metadata.generation`) or its `pve-operator.dev/retry` annotation takes a new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task: Option<FailedTask>,
    /// Ready, Provisioned, PoweredOn, RestartRequired, PrivilegesSufficient, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Where a MachineRequest stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, nothing done in Proxmox yet.
    Pending,
    /// The VM is being created or configured.
    Provisioning,
    /// The VM runs as specified.
    Running,
    /// The VM is stopped as specified.
    Stopped,
    /// The VM is being removed.
    Deleting,
    /// The request cannot progress until something is fixed; the conditions say what.
    Failed,
}

/// A Proxmox task that failed for good, as recorded in `status.failedTask`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailedTask {
    /// The task's UPID.
    pub upid: String,
    /// What the task did (`qmcreate`, `qmclone`, `qmstart`, ...).
    #[serde(rename = "type")]
    pub task_type: String,
    /// Proxmox's exit status of the task (its error text).
    pub exit_status: String,
    /// Why it cannot succeed, as a condition reason (`NoSpaceOnStorage`, ...).
    pub reason: String,
    /// The `metadata.generation` it failed at: a newer generation is tried again.
    pub observed_generation: i64,
    /// The value of the `pve-operator.dev/retry` annotation when it failed: a different value
    /// is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_annotation: Option<String>,
}

/// A Proxmox task.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The task's UPID.
    pub upid: String,
    /// What the task does (`qmcreate`, `qmstart`, ...).
    #[serde(rename = "type")]
    pub task_type: String,
}
