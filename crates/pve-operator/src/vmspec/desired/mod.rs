//! The spec, checked and translated into Proxmox terms once, for both the create call and the
//! drift comparison.

mod cloud_init;
mod fields;
mod hardware;
mod images;
mod passthrough;

use std::collections::BTreeMap;

use pve_client::api::vmconfig::{
    Bios, DiskBus, DiskSlot, EfiDisk, PciDevice, TpmState, TpmVersion, UsbDevice,
};
use pve_operator_api::machine_request::{
    Bios as SpecBios, MachineRequestSpec, TpmVersion as SpecTpmVersion,
};

use super::error::SpecError;
use super::marker::Marker;

pub(crate) use cloud_init::DesiredCloudInit;
pub(crate) use hardware::{DesiredDisk, DesiredNic, cache_name};
pub use images::ImageVolumes;
pub(crate) use passthrough::{pci_matches, usb_matches};

/// What an omitted optional spec field means for a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Baseline {
    /// Created from scratch: an omitted field means Proxmox's default, so a value set in
    /// Proxmox behind the controller's back is removed.
    Defaults,
    /// Cloned from a template: an omitted field means "as the template has it", so the
    /// controller leaves it alone.
    Template,
}

/// The desired VM: the whole spec, checked and in Proxmox terms, built once per reconcile by
/// [`Desired::new`] before any side effect. The create call, the clone call and the drift plan
/// are its methods.
#[derive(Debug, Clone)]
pub struct Desired {
    pub(crate) baseline: Baseline,
    pub(crate) name: String,
    pub(crate) cores: u32,
    pub(crate) sockets: u32,
    pub(crate) cpu_type: Option<String>,
    pub(crate) memory_mib: u64,
    pub(crate) balloon_mib: Option<u64>,
    pub(crate) disks: Vec<DesiredDisk>,
    pub(crate) nics: Vec<DesiredNic>,
    /// The ISO volume for `ide2`.
    pub(crate) iso: Option<String>,
    pub(crate) network_boot: bool,
    pub(crate) cloud_init: Option<DesiredCloudInit>,
    pub(crate) bios: Bios,
    pub(crate) efidisk: Option<EfiDisk>,
    /// `tpmstate0` (OVMF only).
    pub(crate) tpmstate: Option<TpmState>,
    pub(crate) machine: Option<String>,
    /// `hostpciN`, by index (`spec.pciDevices[N]`).
    pub(crate) pci_devices: BTreeMap<u8, PciDevice>,
    /// `usbN`, by index (`spec.usbDevices[N]`).
    pub(crate) usb_devices: BTreeMap<u8, UsbDevice>,
    pub(crate) agent: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) description: String,
    pub(crate) smbios_uuid: Option<String>,
    pub(crate) onboot: bool,
    pub(crate) pool: Option<String>,
    /// How a template boot source is cloned.
    pub(crate) template: Option<TemplateClone>,
    /// The create call's parameters as [`Desired::new`] encoded them (not for a clone).
    pub(crate) create: Option<pve_client::api::vmconfig::EncodedConfig>,
}

/// How a template boot source is cloned: full or linked, and a full clone's target storage.
#[derive(Debug, Clone)]
pub(crate) struct TemplateClone {
    pub(crate) full: bool,
    pub(crate) storage: Option<String>,
}

/// The slot of the ISO CD-ROM.
pub(crate) fn iso_slot() -> Result<DiskSlot, SpecError> {
    DiskSlot::ide(2).map_err(|e| SpecError::invalid("spec.boot.iso", e.to_string()))
}

/// Slots the cloud-init drive may take, best first (`ide2` is Proxmox's usual place).
fn cloudinit_candidates() -> impl Iterator<Item = DiskSlot> {
    [2u8, 0, 1, 3]
        .into_iter()
        .filter_map(|i| DiskSlot::ide(i).ok())
        .chain((0..=5).filter_map(|i| DiskSlot::sata(i).ok()))
}

/// The first free slot for the cloud-init drive.
pub(crate) fn cloudinit_slot(taken: impl Fn(DiskSlot) -> bool) -> Option<DiskSlot> {
    cloudinit_candidates().find(|s| !taken(*s))
}

/// The description: the user's text, a blank line, the marker line. Lines of the user's text
/// in the controller's reserved namespace (`pve-operator:...`, refused at admission since, but
/// possibly stored before) are dropped: a user must not write a marker, not even their own.
pub(crate) fn description(user: Option<&str>, marker: &Marker) -> String {
    let user: Option<String> = user.map(|d| {
        d.lines()
            .filter(|l| !Marker::is_reserved_line(l))
            .collect::<Vec<_>>()
            .join("\n")
    });
    match user
        .as_deref()
        .map(str::trim_end)
        .filter(|d| !d.trim().is_empty())
    {
        Some(d) => format!("{d}\n\n{}", marker.description_line()),
        None => marker.description_line(),
    }
}

/// The tags: the managed tag, the uid tag, then the user's (without case-insensitive repeats,
/// and without tags in the controller's reserved namespace, refused at admission since but
/// possibly stored before).
pub(crate) fn tags(user: &[String], marker: &Marker) -> Vec<String> {
    let mut out: Vec<String> = vec![Marker::MANAGED_TAG.to_owned(), marker.uid_tag()];
    for t in user.iter().filter(|t| !Marker::is_reserved_tag(t)) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.clone());
        }
    }
    out
}

impl Desired {
    /// The desired VM of `spec`, named `vm_name` and carrying `marker`: every field checked and
    /// run through the client's encoders on the spec's boot path, so that what they refuse is
    /// reported, named by its `spec.` field, before a VMID is recorded or anything is sent.
    /// A spec that names ProxmoxImages needs [`Desired::with_images`].
    pub fn new(
        spec: &MachineRequestSpec,
        marker: &Marker,
        vm_name: &str,
    ) -> Result<Self, SpecError> {
        Self::with_images(spec, marker, vm_name, &ImageVolumes::default())
    }

    /// Like [`Desired::new`], with the volume IDs of the ProxmoxImages the spec names (an
    /// image without one is an error, never a blank disk).
    pub fn with_images(
        spec: &MachineRequestSpec,
        marker: &Marker,
        vm_name: &str,
        images: &ImageVolumes,
    ) -> Result<Self, SpecError> {
        let mut desired = Self::from_spec(spec, marker, vm_name, images)?;
        desired.create = desired.check_encodes()?;
        Ok(desired)
    }

    /// Checks `spec` and translates it.
    fn from_spec(
        spec: &MachineRequestSpec,
        marker: &Marker,
        vm_name: &str,
        images: &ImageVolumes,
    ) -> Result<Self, SpecError> {
        let boot = &spec.boot;
        let sources = [
            boot.iso.is_some(),
            boot.image.is_some(),
            boot.template.is_some(),
            boot.network.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(SpecError::invalid(
                "spec.boot",
                "must set exactly one boot source: iso, image, template or network",
            ));
        }
        let disks = hardware::disks(spec, images)?;
        let nics = hardware::nics(spec)?;
        if boot.network.is_some() && nics.is_empty() {
            return Err(SpecError::invalid(
                "spec.networks",
                "needs at least one interface to boot from the network (spec.boot.network)",
            ));
        }
        let cloud_init = cloud_init::cloud_init(spec, &nics)?;
        let fw = &spec.firmware;
        let (bios, efidisk) = match (fw.bios, &fw.efi_disk) {
            (SpecBios::OVMF, Some(e)) => (
                Bios::Ovmf,
                Some(EfiDisk {
                    storage: e.storage.clone(),
                    efitype_4m: true,
                    pre_enrolled_keys: Some(e.pre_enrolled_keys),
                }),
            ),
            (SpecBios::OVMF, None) => {
                return Err(SpecError::invalid(
                    "spec.firmware.efiDisk",
                    "is required with bios: OVMF (UEFI keeps its variables there)",
                ));
            }
            (SpecBios::SeaBIOS, None) => (Bios::Seabios, None),
            (SpecBios::SeaBIOS, Some(_)) => {
                return Err(SpecError::invalid(
                    "spec.firmware.efiDisk",
                    "is used only with bios: OVMF",
                ));
            }
        };
        let tpmstate = match (&fw.tpm_state, bios) {
            (None, _) => None,
            (Some(t), Bios::Ovmf) => Some(TpmState {
                storage: t.storage.clone(),
                version: match t.version {
                    SpecTpmVersion::V2_0 => TpmVersion::V2_0,
                    SpecTpmVersion::V1_2 => TpmVersion::V1_2,
                },
            }),
            (Some(_), Bios::Seabios) => {
                return Err(SpecError::invalid(
                    "spec.firmware.tpmState",
                    "is used only with bios: OVMF",
                ));
            }
        };
        if let Some(t) = &boot.template
            && t.storage.is_some()
            && !t.full
        {
            return Err(SpecError::invalid(
                "spec.boot.template.storage",
                "applies only to full clones; a linked clone stays on the template's storage",
            ));
        }
        if let Some(b) = spec.memory.balloon_mib
            && b > spec.memory.size_mib
        {
            return Err(SpecError::invalid(
                "spec.memory.balloonMiB",
                format!("{b} exceeds sizeMiB ({})", spec.memory.size_mib),
            ));
        }
        Ok(Self {
            baseline: if boot.template.is_some() {
                Baseline::Template
            } else {
                Baseline::Defaults
            },
            name: vm_name.to_owned(),
            cores: spec.cpu.cores,
            sockets: spec.cpu.sockets,
            cpu_type: spec.cpu.cpu_type.clone(),
            memory_mib: spec.memory.size_mib,
            balloon_mib: spec.memory.balloon_mib,
            disks,
            nics,
            iso: match (&boot.iso, &boot.image) {
                (Some(iso), _) => Some(iso.volume.clone()),
                (None, Some(_)) => Some(images.boot_volume()?),
                (None, None) => None,
            },
            network_boot: boot.network.is_some(),
            cloud_init,
            bios,
            efidisk,
            tpmstate,
            machine: fw.machine.clone(),
            pci_devices: passthrough::pci_devices(spec)?,
            usb_devices: passthrough::usb_devices(spec)?,
            agent: spec.guest_agent,
            tags: tags(&spec.tags, marker),
            description: description(spec.description.as_deref(), marker),
            smbios_uuid: marker.smbios_uuid().map(str::to_owned),
            onboot: spec.start_on_boot,
            pool: spec.pool.clone(),
            template: boot.template.as_ref().map(|t| TemplateClone {
                full: t.full,
                storage: t.storage.clone(),
            }),
            create: None,
        })
    }

    /// The boot order of a created VM: the network first for network boot (then the first
    /// disk, once something is installed on it); the first disk, then the ISO for ISO boot (an
    /// empty disk falls through to the installer, an installed one boots).
    pub(crate) fn boot_order(&self) -> Result<Vec<String>, SpecError> {
        let first_disk = self.disks.first().map(|d| d.slot.to_string());
        let mut order = Vec::new();
        if self.network_boot {
            if let Some(n) = self.nics.iter().map(|n| n.index).min() {
                order.push(format!("net{n}"));
            }
            order.extend(first_disk);
        } else {
            order.extend(first_disk);
            if self.iso.is_some() {
                order.push(iso_slot()?.to_string());
            }
        }
        Ok(order)
    }

    /// Whether the SCSI controller must be `virtio-scsi-single` (an I/O thread on a SCSI disk).
    pub(crate) fn needs_single_scsi(&self) -> bool {
        self.disks
            .iter()
            .any(|d| d.iothread && d.slot.bus() == DiskBus::Scsi)
    }
}
