//! A typed VM configuration builder producing the parameters of `POST /nodes/{node}/qemu`
//! (create) and `POST|PUT /nodes/{node}/qemu/{vmid}/config` (update), and a decoded view of
//! `GET .../config`.
//!
//! Every value is checked and every property string is built by [`crate::propstring`], so a
//! value can never inject another key or parameter.
//!
//! The types live in small modules, all re-exported here: drive slots, disks and the EFI disk
//! (`drives`), the TPM state and passthrough by mapping (`devices`), NICs (`nics`), the cloud-init settings (`cloudinit`), the checks and encoding of
//! [`VmConfig::to_params`] (`encode`) and the decoded `GET .../config` (`view`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::PveError;
use crate::secret::Secret;

mod cloudinit;
mod devices;
mod drive_view;
mod drives;
mod encode;
mod encoded;
mod nics;
mod view;

pub use cloudinit::{IpConfig, Ipv4Config, Ipv6Config, decode_sshkeys, encode_sshkeys};
pub use devices::{MAX_HOSTPCI_INDEX, MAX_USB_INDEX, PciDevice, TpmState, TpmVersion, UsbDevice};
pub use drive_view::{DriveView, parse_size_bytes};
pub use drives::{CacheMode, Disk, DiskBus, DiskSlot, DiskSource, Drive, EfiDisk};
pub use encode::{MIN_CORES, MIN_SOCKETS};
pub use encoded::{EncodedConfig, VmParams};
pub use nics::{Nic, NicModel};
pub use view::VmConfigView;

/// The `agent` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentConfig {
    /// Talk to the QEMU guest agent.
    pub enabled: bool,
    /// Run fstrim after moving a disk or migrating.
    pub fstrim_cloned_disks: Option<bool>,
}

/// The firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bios {
    /// `seabios` (legacy BIOS).
    Seabios,
    /// `ovmf` (UEFI; add an [`EfiDisk`]).
    Ovmf,
}

/// The SCSI controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScsiHw {
    /// `lsi`.
    Lsi,
    /// `lsi53c810`.
    Lsi53c810,
    /// `virtio-scsi-pci`.
    VirtioScsiPci,
    /// `virtio-scsi-single` (one controller per disk; needed for iothread on scsi).
    VirtioScsiSingle,
    /// `megasas`.
    Megasas,
    /// `pvscsi`.
    Pvscsi,
}

impl ScsiHw {
    fn as_str(self) -> &'static str {
        match self {
            ScsiHw::Lsi => "lsi",
            ScsiHw::Lsi53c810 => "lsi53c810",
            ScsiHw::VirtioScsiPci => "virtio-scsi-pci",
            ScsiHw::VirtioScsiSingle => "virtio-scsi-single",
            ScsiHw::Megasas => "megasas",
            ScsiHw::Pvscsi => "pvscsi",
        }
    }
}

/// The guest OS type (`ostype`).
pub const OS_TYPES: [&str; 13] = [
    "other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24",
    "l26", "solaris",
];

/// A VM configuration. Unset fields are not sent (Proxmox keeps or defaults them).
#[derive(Debug, Clone, Default)]
pub struct VmConfig {
    /// `name` (a DNS name).
    pub name: Option<String>,
    /// `cores` per socket.
    pub cores: Option<u32>,
    /// `sockets`.
    pub sockets: Option<u32>,
    /// `cpu` type (`host`, `x86-64-v2-AES`, `kvm64`, ...).
    pub cpu: Option<String>,
    /// `memory` in MiB.
    pub memory_mib: Option<u64>,
    /// `balloon` minimum in MiB (0 disables the balloon device).
    pub balloon_mib: Option<u64>,
    /// `scsihw`.
    pub scsihw: Option<ScsiHw>,
    /// Drives by slot (disks, CD-ROMs, the cloud-init drive).
    pub drives: BTreeMap<DiskSlot, Drive>,
    /// `efidisk0`.
    pub efidisk: Option<EfiDisk>,
    /// `tpmstate0`.
    pub tpmstate: Option<TpmState>,
    /// PCI devices by index (`hostpciN`), by mapping only.
    pub pci_devices: BTreeMap<u8, PciDevice>,
    /// USB devices by index (`usbN`), by mapping only.
    pub usb_devices: BTreeMap<u8, UsbDevice>,
    /// NICs by index (`netN`).
    pub nics: BTreeMap<u8, Nic>,
    /// `ciuser`.
    pub ciuser: Option<String>,
    /// `cipassword`.
    pub cipassword: Option<Secret>,
    /// `sshkeys` (one OpenSSH public key per entry).
    pub sshkeys: Vec<String>,
    /// `ipconfigN`.
    pub ipconfigs: BTreeMap<u8, IpConfig>,
    /// `nameserver` addresses.
    pub nameservers: Vec<IpAddr>,
    /// `searchdomain`.
    pub searchdomain: Option<String>,
    /// `boot` order (`scsi0`, `ide2`, `net0`, ...).
    pub boot_order: Vec<String>,
    /// `ostype` (one of [`OS_TYPES`]).
    pub ostype: Option<String>,
    /// `agent`.
    pub agent: Option<AgentConfig>,
    /// `bios`.
    pub bios: Option<Bios>,
    /// `machine` (`q35`, `pc`, `pc-q35-8.1`, ...).
    pub machine: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `description` (at most 8192 characters).
    pub description: Option<String>,
    /// `smbios1: uuid=...`.
    pub smbios_uuid: Option<String>,
    /// `onboot`.
    pub onboot: Option<bool>,
    /// `pool` (create only).
    pub pool: Option<String>,
}

impl VmConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `drive` in `slot`.
    pub fn drive(mut self, slot: DiskSlot, drive: Drive) -> Self {
        self.drives.insert(slot, drive);
        self
    }

    /// Sets NIC `netN`.
    pub fn nic(mut self, index: u8, nic: Nic) -> Self {
        self.nics.insert(index, nic);
        self
    }

    /// Sets `ipconfigN`.
    pub fn ipconfig(mut self, index: u8, ip: IpConfig) -> Self {
        self.ipconfigs.insert(index, ip);
        self
    }
}

/// A [`PveError::InvalidInput`] for `field`.
fn err(field: &str, msg: impl Into<String>) -> PveError {
    PveError::invalid_input(field, msg)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod devices_tests;
