//! Drift of the firmware and the disks: disks are added or grown, never shrunk, moved or
//! deleted; what cannot be reconciled is a conflict.

use pve_client::api::vmconfig::{Bios, ScsiHw, TpmState};

use super::Planner;
use crate::vmspec::desired::{DesiredDisk, cache_name};
use pve_client::api::vmconfig::DriveView;

use crate::vmspec::wire::GIB;

impl Planner<'_> {
    pub(super) fn firmware(&mut self) {
        let (d, cur) = (self.d, self.cur);
        let want_scsihw = self.defaults() || d.needs_single_scsi();
        if want_scsihw && cur.get("scsihw").unwrap_or("lsi") != "virtio-scsi-single" {
            self.plan.config.scsihw = Some(ScsiHw::VirtioScsiSingle);
        }
        let (want_bios, want_name) = match d.bios {
            Bios::Seabios => ("seabios", "SeaBIOS"),
            Bios::Ovmf => ("ovmf", "OVMF"),
        };
        let bios = cur.get("bios").unwrap_or("seabios");
        if bios != want_bios {
            if self.defaults() {
                self.plan.config.bios = Some(d.bios);
            } else {
                self.plan.conflicts.push(format!(
                    "spec.firmware.bios is {want_name} but the VM cloned from the template uses \
                     {bios}; set spec.firmware.bios to the template's firmware"
                ));
            }
        }
        if let Some(e) = &d.efidisk {
            match cur.get("efidisk0").map(DriveView::parse) {
                None => self.plan.config.efidisk = Some(e.clone()),
                Some(None) => self.plan.conflicts.push(format!(
                    "spec.firmware.efiDisk cannot be compared with efidisk0 in Proxmox ({:?})",
                    cur.get("efidisk0").unwrap_or_default()
                )),
                Some(Some(v)) => {
                    if v.storage() != Some(e.storage.as_str()) {
                        self.plan.conflicts.push(format!(
                            "spec.firmware.efiDisk.storage is {} but efidisk0 is on {} in \
                             Proxmox ({}); an EFI disk is not moved between storages",
                            e.storage,
                            v.storage().unwrap_or("no storage"),
                            v.volume
                        ));
                    }
                    let want_keys = e.pre_enrolled_keys.unwrap_or(false);
                    if v.flag("pre-enrolled-keys") != want_keys {
                        self.plan.conflicts.push(format!(
                            "spec.firmware.efiDisk.preEnrolledKeys is {want_keys} but efidisk0 \
                             in Proxmox has pre-enrolled-keys={}; keys are enrolled only when \
                             the EFI disk is created",
                            u8::from(!want_keys)
                        ));
                    }
                }
            }
        }
        if let Some(t) = &d.tpmstate {
            self.tpm_state(t);
        }
        match &d.machine {
            Some(m) => {
                if cur.main_value("machine", "type").as_deref() != Some(m.as_str()) {
                    self.plan.config.machine = Some(m.clone());
                }
            }
            None => self.delete_if_default("machine"),
        }
    }

    pub(super) fn disks(&mut self) {
        for disk in &self.d.disks {
            match self.drives.get(&disk.slot) {
                None => {
                    self.plan.config.drives.insert(disk.slot, disk.new_drive());
                }
                Some(None) => self.plan.conflicts.push(format!(
                    "{}.slot {} holds something in Proxmox that is not a disk ({:?})",
                    disk.field,
                    disk.slot,
                    self.cur.get(&disk.slot.to_string()).unwrap_or_default()
                )),
                Some(Some(v)) if v.is_cdrom() => self.plan.conflicts.push(format!(
                    "{}.slot {} is used by {} in Proxmox",
                    disk.field,
                    disk.slot,
                    if v.is_cloudinit() {
                        "the cloud-init drive"
                    } else {
                        "a CD-ROM drive"
                    }
                )),
                Some(Some(v)) => {
                    let v = v.clone();
                    self.existing_disk(disk, &v);
                }
            }
        }
        if self.defaults() {
            for (slot, v) in &self.drives {
                let Some(v) = v else { continue };
                if v.is_cdrom() || self.d.disks.iter().any(|d| d.slot == *slot) {
                    continue;
                }
                self.plan.conflicts.push(format!(
                    "spec.disks has no {slot}, but Proxmox has {} there; add it to spec.disks \
                     or detach it in Proxmox (the controller never deletes a disk)",
                    v.volume
                ));
            }
        }
    }

    fn existing_disk(&mut self, disk: &DesiredDisk, v: &DriveView) {
        if v.storage() != Some(disk.storage.as_str()) {
            self.plan.conflicts.push(format!(
                "{}.storage is {} but {} is on {} in Proxmox ({}); a disk is not moved between \
                 storages",
                disk.field,
                disk.storage,
                disk.slot,
                v.storage().unwrap_or("no storage"),
                v.volume
            ));
        }
        if let Some(bytes) = v.size_bytes() {
            let want = disk.size_gib.saturating_mul(GIB);
            if bytes < want {
                self.plan.resizes.push((disk.slot, disk.size_gib));
            } else if bytes > want {
                self.plan.conflicts.push(format!(
                    "{}.sizeGiB is {} but {} is {} in Proxmox; disks never shrink (set sizeGiB \
                     to at least {})",
                    disk.field,
                    disk.size_gib,
                    disk.slot,
                    v.size_text().unwrap_or_default(),
                    bytes.div_ceil(GIB)
                ));
            }
        }
        // On a cloned VM, an option the spec leaves off (a bool's default) is the template's
        // choice (Proxmox's GUI turns iothread on for new disks, for instance); one the spec
        // turns on must be there.
        let mut differ = Vec::new();
        for (name, want, have) in [
            ("ssd", disk.ssd, v.flag("ssd")),
            ("discard", disk.discard, v.discard()),
            ("iothread", disk.iothread, v.flag("iothread")),
        ] {
            if want != have && (self.defaults() || want) {
                differ.push(format!("{name} is {want} in spec but {have} in Proxmox"));
            }
        }
        let want_cache = disk.cache.map(cache_name);
        if (self.defaults() || want_cache.is_some()) && want_cache.unwrap_or("none") != v.cache() {
            differ.push(format!(
                "cache is {} in spec but {} in Proxmox",
                want_cache.unwrap_or("none (default)"),
                v.cache()
            ));
        }
        if !differ.is_empty() {
            self.plan.conflicts.push(format!(
                "{} ({}): {}; the options of an existing disk are set when it is added, change \
                 them in Proxmox or in the spec",
                disk.field,
                disk.slot,
                differ.join(", ")
            ));
        }
    }

    /// A TPM the spec asks for is added when the VM has none; one on another storage or of
    /// another version is a conflict (the state, with the keys sealed in it, is never moved or
    /// recreated by the controller).
    fn tpm_state(&mut self, want: &TpmState) {
        let current = self.cur.get("tpmstate0");
        match current.map(DriveView::parse) {
            None => self.plan.config.tpmstate = Some(want.clone()),
            Some(None) => self.plan.conflicts.push(format!(
                "spec.firmware.tpmState cannot be compared with tpmstate0 in Proxmox ({:?})",
                current.unwrap_or_default()
            )),
            Some(Some(v)) => {
                if v.storage() != Some(want.storage.as_str()) {
                    self.plan.conflicts.push(format!(
                        "spec.firmware.tpmState.storage is {} but tpmstate0 is on {} in Proxmox \
                         ({}); the TPM state is not moved between storages",
                        want.storage,
                        v.storage().unwrap_or("no storage"),
                        v.volume
                    ));
                }
                let version = v.tpm_version();
                if version != want.version.as_str() {
                    self.plan.conflicts.push(format!(
                        "spec.firmware.tpmState.version is {} but tpmstate0 in Proxmox is {version}; \
                         the TPM version cannot be changed",
                        want.version.as_str()
                    ));
                }
            }
        }
    }
}
