//! Devices that are not drives: the TPM state volume (`tpmstate0`) and PCI and USB passthrough
//! (`hostpciN`, `usbN`) by cluster resource mapping.
//!
//! Passthrough is written only by mapping (`mapping=<id>`): a raw host address (`host=0000:01:00`
//! or a USB `vendor:product`) needs `root@pam` on PVE 8.x and 9.x, and a mapping is what a
//! least-privilege token can be granted (`Mapping.Use` on `/mapping/pci/<id>` or
//! `/mapping/usb/<id>`), so the types here cannot express a raw address.

use crate::api::validate_storage;
use crate::error::{PveError, Result};
use crate::propstring::{PropertyStringBuilder, check};

/// The highest `hostpciN` index (PVE 8.4 and 9.x: `hostpci0` to `hostpci15`).
pub const MAX_HOSTPCI_INDEX: u8 = 15;
/// The highest `usbN` index (PVE 8.4 and 9.x: `usb0` to `usb13`).
pub const MAX_USB_INDEX: u8 = 13;

/// The TPM interface version of `tpmstate0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpmVersion {
    /// `v1.2`, Proxmox's default.
    V1_2,
    /// `v2.0`, what Windows 11 requires.
    V2_0,
}

impl TpmVersion {
    /// The schema's word for the version.
    pub fn as_str(self) -> &'static str {
        match self {
            TpmVersion::V1_2 => "v1.2",
            TpmVersion::V2_0 => "v2.0",
        }
    }
}

/// The TPM state volume (`tpmstate0`), allocated on `storage` at create time (`STORAGE:1`; its
/// size is fixed by Proxmox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmState {
    /// The storage ID.
    pub storage: String,
    /// The TPM interface version (cannot be changed later).
    pub version: TpmVersion,
}

impl TpmState {
    pub(super) fn encode(&self) -> Result<String> {
        validate_storage("tpmstate0.storage", &self.storage)?;
        let mut b = PropertyStringBuilder::new("tpmstate0");
        b.default_value("file", &format!("{}:1", self.storage), check::any)?;
        b.push("version", self.version.as_str(), check::any)?;
        Ok(b.build())
    }
}

/// A PCI device passed through by mapping (`hostpciN: mapping=<id>,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    /// The cluster mapping ID (`/cluster/mapping/pci/<id>`).
    pub mapping: String,
    /// A mediated device type of the mapping (`mdev=`), for vGPUs.
    pub mdev: Option<String>,
    /// Attach as PCI Express (`pcie=1`, q35 machines only).
    pub pcie: Option<bool>,
    /// Expose the device's ROM (`rombar`, Proxmox's default 1).
    pub rombar: Option<bool>,
    /// The guest's primary GPU (`x-vga=1`).
    pub primary_gpu: Option<bool>,
}

impl PciDevice {
    /// The device of mapping `mapping`, with Proxmox's defaults otherwise.
    pub fn mapped(mapping: impl Into<String>) -> Self {
        Self {
            mapping: mapping.into(),
            mdev: None,
            pcie: None,
            rombar: None,
            primary_gpu: None,
        }
    }

    pub(super) fn encode(&self, index: u8) -> Result<String> {
        let mut b = mapped("hostpci", index, MAX_HOSTPCI_INDEX, &self.mapping)?;
        b.push_opt("mdev", self.mdev.as_deref(), mdev_type)?;
        b.push_opt_bool("pcie", self.pcie);
        b.push_opt_bool("rombar", self.rombar);
        b.push_opt_bool("x-vga", self.primary_gpu);
        Ok(b.build())
    }
}

/// A USB device passed through by mapping (`usbN: mapping=<id>[,usb3=1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDevice {
    /// The cluster mapping ID (`/cluster/mapping/usb/<id>`).
    pub mapping: String,
    /// Attach to a USB3 controller (`usb3=1`).
    pub usb3: Option<bool>,
}

impl UsbDevice {
    /// The device of mapping `mapping`.
    pub fn mapped(mapping: impl Into<String>) -> Self {
        Self {
            mapping: mapping.into(),
            usb3: None,
        }
    }

    pub(super) fn encode(&self, index: u8) -> Result<String> {
        let mut b = mapped("usb", index, MAX_USB_INDEX, &self.mapping)?;
        b.push_opt_bool("usb3", self.usb3);
        Ok(b.build())
    }
}

/// The property string of device `{bus}{index}` (at most `{bus}{max}`), started with its
/// `mapping=` key.
fn mapped(bus: &str, index: u8, max: u8, mapping: &str) -> Result<PropertyStringBuilder> {
    let field = format!("{bus}{index}");
    if index > max {
        return Err(PveError::invalid_input(
            &field,
            format!("{bus} devices are {bus}0..={bus}{max}"),
        ));
    }
    let mut b = PropertyStringBuilder::new(&field);
    b.push("mapping", mapping, mapping_id)?;
    Ok(b)
}

/// A mapping ID as the schema's `pve-configid` format is checked here (schema conformance):
/// a lowercase letter, then at least one lowercase letter, digit or `_`.
fn mapping_id(v: &str) -> std::result::Result<(), String> {
    let mut chars = v.chars();
    let ok = v.len() >= 2
        && v.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(
            "is not a mapping ID (a lowercase letter, then lowercase letters, digits and '_')"
                .into(),
        )
    }
}

/// A mediated device type (`nvidia-63`, `i915-GVTg_V5_4`).
fn mdev_type(v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err("is not a mediated device type (letters, digits, '-', '_', '.')".into())
    }
}
