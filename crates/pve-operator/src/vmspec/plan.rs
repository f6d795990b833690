//! The plan type: what to set, delete and grow, and what cannot be reconciled.

use std::collections::BTreeSet;

use pve_client::api::qemu::VmConfigUpdate;
use pve_client::api::vmconfig::{DiskSlot, VmConfig};
use pve_client::error::PveError;

/// What to change so that the VM's current config matches the spec.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlan {
    /// Keys to set (only those that differ), for `POST|PUT .../config`.
    pub config: VmConfig,
    /// Keys to delete (the `delete` parameter of the same call).
    pub delete: Vec<String>,
    /// Disks to grow to N GiB (`PUT .../resize`, one call each, after the config update).
    pub resizes: Vec<(DiskSlot, u64)>,
    /// Differences that cannot be reconciled, in words naming the spec field (a disk smaller
    /// in spec than in Proxmox, a disk on another storage, a slot used by something else, ...).
    /// They are reported, never acted on; the rest of the plan is still safe to apply.
    pub conflicts: Vec<String>,
    /// `config` and `delete` as the client's typed update, encoded and checked once when the
    /// plan was made ([`UpdatePlan::seal`]): what is sent.
    update: VmConfigUpdate,
}

impl UpdatePlan {
    /// True when there is nothing to apply: no key to set or delete and no disk to grow.
    /// Conflicts do not count (nothing can be applied for them); check `conflicts` separately.
    pub fn is_empty(&self) -> bool {
        !self.has_config_changes() && self.resizes.is_empty()
    }

    /// True when a config update call is needed (keys to set or delete).
    pub fn has_config_changes(&self) -> bool {
        !self.delete.is_empty() || !config_keys(&self.config).is_empty()
    }

    /// True when the VM matches the spec: nothing to apply and no conflict.
    pub fn is_in_sync(&self) -> bool {
        self.is_empty() && self.conflicts.is_empty()
    }

    /// The config keys the plan sets or deletes, sorted (`cores`, `net0`, `tags`, ...).
    /// Resized disks are not included; see `resizes`.
    pub fn changed_keys(&self) -> Vec<String> {
        let mut keys: BTreeSet<String> = config_keys(&self.config).into_iter().collect();
        keys.extend(self.delete.iter().cloned());
        keys.into_iter().collect()
    }

    /// The keys to set and delete as the client's typed update, built when the plan was made
    /// (the config update sends this, with the digest the plan was made on).
    pub fn update(&self) -> &VmConfigUpdate {
        &self.update
    }

    /// [`UpdatePlan::update`] made to apply only over the config it was planned on (`digest`
    /// of that read; an empty digest, which Proxmox never returns for a VM, adds none).
    pub fn update_over(&self, digest: &str) -> Result<VmConfigUpdate, PveError> {
        if digest.is_empty() {
            return Ok(self.update.clone());
        }
        self.update.clone().digest(digest)
    }

    /// Builds the typed update from `config` and `delete`: every value encoded and checked
    /// (no pool, no key both set and deleted), before anything is sent.
    pub(crate) fn seal(mut self) -> Result<Self, PveError> {
        self.update = VmConfigUpdate::set(&self.config)?.delete(self.delete.iter().cloned())?;
        Ok(self)
    }

    pub(crate) fn delete(&mut self, key: impl Into<String>) {
        let key = key.into();
        if !self.delete.contains(&key) {
            self.delete.push(key);
        }
    }
}

/// The Proxmox keys a [`VmConfig`] sets. Destructured field by field, so that a field added to
/// the client's builder fails to compile here instead of going unreported.
pub(crate) fn config_keys(c: &VmConfig) -> Vec<String> {
    let VmConfig {
        name,
        cores,
        sockets,
        cpu,
        memory_mib,
        balloon_mib,
        scsihw,
        drives,
        efidisk,
        tpmstate,
        pci_devices,
        usb_devices,
        nics,
        ciuser,
        cipassword,
        sshkeys,
        ipconfigs,
        nameservers,
        searchdomain,
        boot_order,
        ostype,
        agent,
        bios,
        machine,
        tags,
        description,
        smbios_uuid,
        onboot,
        pool,
    } = c;
    let mut keys: Vec<String> = [
        ("name", name.is_some()),
        ("cores", cores.is_some()),
        ("sockets", sockets.is_some()),
        ("cpu", cpu.is_some()),
        ("memory", memory_mib.is_some()),
        ("balloon", balloon_mib.is_some()),
        ("scsihw", scsihw.is_some()),
        ("efidisk0", efidisk.is_some()),
        ("tpmstate0", tpmstate.is_some()),
        ("ciuser", ciuser.is_some()),
        ("cipassword", cipassword.is_some()),
        ("sshkeys", !sshkeys.is_empty()),
        ("nameserver", !nameservers.is_empty()),
        ("searchdomain", searchdomain.is_some()),
        ("boot", !boot_order.is_empty()),
        ("ostype", ostype.is_some()),
        ("agent", agent.is_some()),
        ("bios", bios.is_some()),
        ("machine", machine.is_some()),
        ("tags", !tags.is_empty()),
        ("description", description.is_some()),
        ("smbios1", smbios_uuid.is_some()),
        ("onboot", onboot.is_some()),
        ("pool", pool.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k.to_owned())
    .collect();
    keys.extend(drives.keys().map(DiskSlot::to_string));
    keys.extend(nics.keys().map(|i| format!("net{i}")));
    keys.extend(pci_devices.keys().map(|i| format!("hostpci{i}")));
    keys.extend(usb_devices.keys().map(|i| format!("usb{i}")));
    keys.extend(ipconfigs.keys().map(|i| format!("ipconfig{i}")));
    keys.sort();
    keys
}
