//! PCI and USB passthrough: `spec.pciDevices[i]` is `hostpci{i}`, `spec.usbDevices[i]` is
//! `usb{i}`, each by resource mapping and with only the options that differ from Proxmox's
//! defaults, so that the config reads back as it was written.

use std::collections::BTreeMap;

use pve_client::api::vmconfig::{MAX_HOSTPCI_INDEX, MAX_USB_INDEX, PciDevice, UsbDevice};
use pve_client::propstring::PropertyString;
use pve_operator_api::MachineRequestSpec;

use crate::vmspec::error::SpecError;

/// The `hostpciN` devices of `spec`, by index.
pub(crate) fn pci_devices(spec: &MachineRequestSpec) -> Result<BTreeMap<u8, PciDevice>, SpecError> {
    let mut out = BTreeMap::new();
    for (i, d) in spec.pci_devices.iter().enumerate() {
        let index = index_of(i, MAX_HOSTPCI_INDEX, "spec.pciDevices", "hostpci")?;
        unique(
            &out,
            |p: &PciDevice| &p.mapping,
            &d.mapping,
            "spec.pciDevices",
            i,
        )?;
        out.insert(
            index,
            PciDevice {
                mapping: d.mapping.clone(),
                mdev: d.mdev.clone(),
                pcie: d.pcie.then_some(true),
                rombar: (!d.rombar).then_some(false),
                primary_gpu: d.primary_gpu.then_some(true),
            },
        );
    }
    Ok(out)
}

/// The `usbN` devices of `spec`, by index.
pub(crate) fn usb_devices(spec: &MachineRequestSpec) -> Result<BTreeMap<u8, UsbDevice>, SpecError> {
    let mut out = BTreeMap::new();
    for (i, d) in spec.usb_devices.iter().enumerate() {
        let index = index_of(i, MAX_USB_INDEX, "spec.usbDevices", "usb")?;
        unique(
            &out,
            |u: &UsbDevice| &u.mapping,
            &d.mapping,
            "spec.usbDevices",
            i,
        )?;
        out.insert(
            index,
            UsbDevice {
                mapping: d.mapping.clone(),
                usb3: d.usb3.then_some(true),
            },
        );
    }
    Ok(out)
}

fn index_of(i: usize, max: u8, field: &str, bus: &str) -> Result<u8, SpecError> {
    u8::try_from(i).ok().filter(|i| *i <= max).ok_or_else(|| {
        SpecError::invalid(
            field,
            format!("lists more than {} devices ({bus}0 to {bus}{max})", max + 1),
        )
    })
}

fn unique<T>(
    have: &BTreeMap<u8, T>,
    mapping_of: impl Fn(&T) -> &String,
    mapping: &str,
    field: &str,
    i: usize,
) -> Result<(), SpecError> {
    if have.values().any(|d| mapping_of(d) == mapping) {
        return Err(SpecError::invalid(
            format!("{field}[{i}].mapping"),
            format!("names {mapping:?} again; each resource mapping may be named once"),
        ));
    }
    Ok(())
}

/// Whether the config value `current` of a `hostpciN` key is the device `want`: the same
/// mapping and options, and nothing else (a raw `host=` device or an option the spec cannot
/// state is not the spec's device).
pub(crate) fn pci_matches(want: &PciDevice, current: &str) -> bool {
    let Ok(p) = PropertyString::parse(current) else {
        return false;
    };
    let known = ["mapping", "pcie", "rombar", "x-vga", "mdev"];
    p.entries()
        .all(|(k, _)| k.is_some_and(|k| known.contains(&k)))
        && p.get("mapping") == Some(want.mapping.as_str())
        && p.get("mdev") == want.mdev.as_deref()
        && p.get_bool("pcie").unwrap_or(false) == want.pcie.unwrap_or(false)
        && p.get_bool("rombar").unwrap_or(true) == want.rombar.unwrap_or(true)
        && p.get_bool("x-vga").unwrap_or(false) == want.primary_gpu.unwrap_or(false)
}

/// Whether the config value `current` of a `usbN` key is the device `want`.
pub(crate) fn usb_matches(want: &UsbDevice, current: &str) -> bool {
    let Ok(p) = PropertyString::parse(current) else {
        return false;
    };
    p.entries()
        .all(|(k, _)| k.is_some_and(|k| k == "mapping" || k == "usb3"))
        && p.get("mapping") == Some(want.mapping.as_str())
        && p.get_bool("usb3").unwrap_or(false) == want.usb3.unwrap_or(false)
}
