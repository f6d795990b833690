//! PCI and USB passthrough by cluster resource mapping (`hostpciN`, `usbN`).
//!
//! Only a mapping can be named: an administrator maps a logical name to a host device per node
//! (Datacenter → Resource Mappings in the Proxmox UI) and grants `Mapping.Use` on it. A raw host
//! device (a PCI address, a USB `vendor:product` id or port, `host=...`) needs `root@pam` in
//! Proxmox VE, so admission refuses one with a message that says so.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;

/// The CEL rule that refuses a raw host device where a mapping name belongs: a mapping id has
/// no `:`, `=`, `.`, `;`, `,`, `-` or `/`, which every PCI address (`0000:01:00.0`, `01:00.0`),
/// vendor:device id (`10de:2204`), USB port (`1-2.3`) and `host=` value has.
pub const NO_RAW_HOST_DEVICE_RULE: &str = "!self.matches('[:=.;,/-]')";

/// The message of [`NO_RAW_HOST_DEVICE_RULE`] on `spec.pciDevices[].mapping`.
pub const RAW_PCI_DEVICE_MESSAGE: &str = "mapping must be the name of a PCI resource mapping, not a host device: passing a raw host device through (an address like 0000:01:00.0, a vendor:device id, host=...) needs root@pam in Proxmox VE; ask the Proxmox administrator to create a PCI resource mapping for it (Datacenter → Resource Mappings) and grant Mapping.Use on /mapping/pci/<name>, then give that name here";

/// The message of [`NO_RAW_HOST_DEVICE_RULE`] on `spec.usbDevices[].mapping`.
pub const RAW_USB_DEVICE_MESSAGE: &str = "mapping must be the name of a USB resource mapping, not a host device: passing a raw host device through (a vendor:product id like 1050:0407, a port like 1-2.3, host=...) needs root@pam in Proxmox VE; ask the Proxmox administrator to create a USB resource mapping for it (Datacenter → Resource Mappings) and grant Mapping.Use on /mapping/usb/<name>, then give that name here";

/// The CEL rule on a device list: every mapping is named once.
pub const UNIQUE_MAPPINGS_RULE: &str = "self.all(d, self.exists_one(e, e.mapping == d.mapping))";

/// The CEL rule on the spec: a PCI Express device needs a q35 machine (qemu-server refuses to
/// start such a VM with "q35 machine model is not enabled").
pub const PCIE_NEEDS_Q35_RULE: &str = "!has(self.pciDevices) || !self.pciDevices.exists(d, d.pcie) || (has(self.firmware) && has(self.firmware.machine) && self.firmware.machine.contains('q35'))";

/// The message of [`PCIE_NEEDS_Q35_RULE`].
pub const PCIE_NEEDS_Q35_MESSAGE: &str = "pcie: true needs the q35 machine type (Proxmox VE refuses to start the VM otherwise: \"q35 machine model is not enabled\"); set spec.firmware.machine: q35, or pcie: false";

/// A PCI device passed through by resource mapping (`hostpciN: mapping=<name>,...`, N being the
/// entry's position in `spec.pciDevices`). Passthrough cannot be hot-plugged: a change to a
/// running VM waits for its next start (see `spec.pendingChanges`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PciDevice {
    /// The name of a PCI resource mapping (Datacenter → Resource Mappings in Proxmox), e.g.
    /// `gpu_a4000`. The VM is placed only on a node where the mapping has a device. The
    /// controller's token needs `Mapping.Use` on `/mapping/pci/<name>`.
    #[schemars(length(min = 2, max = 128), pattern(patterns::MAPPING_ID))]
    #[x_kube(validation = Rule::new(NO_RAW_HOST_DEVICE_RULE).message(RAW_PCI_DEVICE_MESSAGE))]
    pub mapping: String,
    /// Attach the device to the PCI Express bus (`pcie=1`; needs `spec.firmware.machine: q35`).
    #[serde(default)]
    pub pcie: bool,
    /// Make the device's ROM visible to the guest (`rombar`, default true).
    #[serde(default = "yes")]
    pub rombar: bool,
    /// Use the device as the guest's primary GPU (`x-vga=1`).
    #[serde(default)]
    pub primary_gpu: bool,
    /// A mediated device type to create on the device (`mdev=`, e.g. an NVIDIA vGPU profile such
    /// as `nvidia-63`). Only for mappings the administrator marked as mediated devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(patterns::MDEV_TYPE))]
    pub mdev: Option<String>,
}

fn yes() -> bool {
    true
}

/// A USB device passed through by resource mapping (`usbN: mapping=<name>[,usb3=1]`, N being the
/// entry's position in `spec.usbDevices`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsbDevice {
    /// The name of a USB resource mapping (Datacenter → Resource Mappings in Proxmox), e.g.
    /// `yubikey`. The VM is placed only on a node where the mapping has a device. The
    /// controller's token needs `Mapping.Use` on `/mapping/usb/<name>`.
    #[schemars(length(min = 2, max = 128), pattern(patterns::MAPPING_ID))]
    #[x_kube(validation = Rule::new(NO_RAW_HOST_DEVICE_RULE).message(RAW_USB_DEVICE_MESSAGE))]
    pub mapping: String,
    /// Attach the device to a USB 3 (xHCI) controller (`usb3=1`).
    #[serde(default)]
    pub usb3: bool,
}
