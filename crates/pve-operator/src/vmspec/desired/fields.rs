//! Which spec field a Proxmox key comes from, so that every error names the field the user
//! wrote.

use pve_client::api::vmconfig::DiskSlot;

use super::{Desired, iso_slot};
use crate::vmspec::error::SpecError;

impl Desired {
    /// The spec field a Proxmox key was built from (for error messages).
    pub fn spec_field_of(&self, proxmox_key: &str) -> String {
        let key = proxmox_key.split('.').next().unwrap_or(proxmox_key);
        if let Ok(slot) = DiskSlot::parse(key) {
            if let Some(d) = self.disks.iter().find(|d| d.slot == slot) {
                return d.field.clone();
            }
            if self.iso.is_some() && iso_slot().is_ok_and(|s| s == slot) {
                return "spec.boot.iso.volume".into();
            }
            return "spec.cloudInit.storage".into();
        }
        if let Some(i) = key.strip_prefix("net").and_then(|i| i.parse::<u8>().ok())
            && let Some(n) = self.nics.iter().find(|n| n.index == i)
        {
            return n.field.clone();
        }
        if let Some(i) = key
            .strip_prefix("ipconfig")
            .and_then(|i| i.parse::<u8>().ok())
            && let Some((field, _)) = self.cloud_init.as_ref().and_then(|c| c.ipconfigs.get(&i))
        {
            return field.clone();
        }
        if let Some(i) = key
            .strip_prefix("hostpci")
            .and_then(|i| i.parse::<u8>().ok())
        {
            return format!("spec.pciDevices[{i}]");
        }
        if let Some(i) = key.strip_prefix("usb").and_then(|i| i.parse::<u8>().ok()) {
            return format!("spec.usbDevices[{i}]");
        }
        match key {
            "name" => "spec.vmName",
            "cores" => "spec.cpu.cores",
            "sockets" => "spec.cpu.sockets",
            "cpu" => "spec.cpu.type",
            "memory" => "spec.memory.sizeMiB",
            "balloon" => "spec.memory.balloonMiB",
            "efidisk0" => "spec.firmware.efiDisk",
            "tpmstate0" => "spec.firmware.tpmState",
            "bios" => "spec.firmware.bios",
            "machine" => "spec.firmware.machine",
            "ciuser" => "spec.cloudInit.user",
            "sshkeys" => "spec.cloudInit.sshKeys",
            "nameserver" => "spec.cloudInit.nameservers",
            "searchdomain" => "spec.cloudInit.searchDomain",
            "tags" => "spec.tags",
            "description" => "spec.description",
            "pool" => "spec.pool",
            "smbios1" => "metadata.uid",
            "agent" => "spec.guestAgent",
            "onboot" => "spec.startOnBoot",
            "boot" => "spec.boot",
            _ => "spec",
        }
        .to_owned()
    }

    /// Maps an encoder error of the client to a [`SpecError`] naming the spec field.
    pub(crate) fn rejected(&self, err: pve_client::PveError) -> SpecError {
        match err {
            pve_client::PveError::InvalidInput { field, message } => SpecError::Rejected {
                field: self.spec_field_of(&field),
                proxmox_key: field,
                message,
            },
            other => SpecError::Rejected {
                field: "spec".into(),
                proxmox_key: String::new(),
                message: other.to_string(),
            },
        }
    }
}
