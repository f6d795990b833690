//! Disks and NICs of the spec, checked (slots, buses, duplicates) and in Proxmox terms.

use std::collections::BTreeSet;

use pve_client::api::vmconfig::{CacheMode, Disk, DiskBus, DiskSlot, Drive, Nic, NicModel};
use pve_operator_api::machine_request::{DiskCache, MachineRequestSpec, NicModel as SpecNicModel};

use super::{ImageVolumes, iso_slot};
use crate::vmspec::error::SpecError;

/// One disk of the spec.
#[derive(Debug, Clone)]
pub(crate) struct DesiredDisk {
    /// `spec.disks[i]`.
    pub field: String,
    pub slot: DiskSlot,
    pub storage: String,
    pub size_gib: u64,
    pub ssd: bool,
    pub discard: bool,
    pub iothread: bool,
    pub cache: Option<CacheMode>,
    /// The volume a new disk is imported from (a ProxmoxImage, `spec.disks[i].image`).
    pub import_from: Option<String>,
}

impl DesiredDisk {
    /// A new disk allocated on its storage (`storage:SIZE,options`), or imported from its
    /// image (`storage:0,import-from=VOLUME,options`; the drift pass grows it to the size).
    pub fn new_drive(&self) -> Drive {
        let mut d = match &self.import_from {
            Some(volid) => Disk::import(self.storage.clone(), volid.clone()),
            None => Disk::new(self.storage.clone(), self.size_gib as f64),
        };
        if self.ssd {
            d = d.ssd(true);
        }
        if self.discard {
            d = d.discard(true);
        }
        if self.iothread {
            d = d.iothread(true);
        }
        if let Some(c) = self.cache {
            d = d.cache(c);
        }
        Drive::Disk(d)
    }
}

/// One NIC of the spec.
#[derive(Debug, Clone)]
pub(crate) struct DesiredNic {
    /// `spec.networks[i]`.
    pub field: String,
    pub index: u8,
    pub model: NicModel,
    pub bridge: String,
    pub vlan: Option<u16>,
    pub mac: Option<String>,
    pub firewall: bool,
}

impl DesiredNic {
    /// The NIC to send; `current` supplies the MAC Proxmox generated (when the spec has none)
    /// and the options the spec does not cover (`mtu`, `link_down`).
    pub fn to_nic(&self, current: Option<&Nic>) -> Nic {
        let mut nic = Nic::new(self.model, self.bridge.clone());
        nic.tag = self.vlan;
        nic.macaddr = self
            .mac
            .clone()
            .or_else(|| current.and_then(|c| c.macaddr.clone()));
        nic.firewall = self.firewall.then_some(true);
        if let Some(c) = current {
            nic.mtu = c.mtu;
            nic.link_down = c.link_down;
        }
        nic
    }

    /// Whether `current` is this NIC (a MAC the spec leaves open may be anything).
    pub fn matches(&self, current: &Nic) -> bool {
        current.model == self.model
            && current.bridge == self.bridge
            && current.tag == self.vlan
            && current.firewall.unwrap_or(false) == self.firewall
            && self.mac.as_ref().is_none_or(|m| {
                current
                    .macaddr
                    .as_ref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(m))
            })
    }
}

fn cache_mode(c: DiskCache) -> CacheMode {
    match c {
        DiskCache::None => CacheMode::None,
        DiskCache::Writethrough => CacheMode::Writethrough,
        DiskCache::Writeback => CacheMode::Writeback,
        DiskCache::Directsync => CacheMode::Directsync,
        DiskCache::Unsafe => CacheMode::Unsafe,
    }
}

/// The wire name of a cache mode.
pub(crate) fn cache_name(c: CacheMode) -> &'static str {
    match c {
        CacheMode::None => "none",
        CacheMode::Writethrough => "writethrough",
        CacheMode::Writeback => "writeback",
        CacheMode::Unsafe => "unsafe",
        CacheMode::Directsync => "directsync",
    }
}

fn nic_model(m: SpecNicModel) -> NicModel {
    match m {
        SpecNicModel::Virtio => NicModel::Virtio,
        SpecNicModel::E1000 => NicModel::E1000,
        SpecNicModel::E1000e => NicModel::E1000e,
        SpecNicModel::Rtl8139 => NicModel::Rtl8139,
        SpecNicModel::Vmxnet3 => NicModel::Vmxnet3,
    }
}

/// `net7` → 7.
pub(super) fn nic_index(field: &str, name: &str) -> Result<u8, SpecError> {
    name.strip_prefix("net")
        .and_then(|n| {
            n.parse::<u8>()
                .ok()
                .filter(|i| *i <= 31 && n == i.to_string())
        })
        .ok_or_else(|| SpecError::invalid(field, format!("{name:?} is not a NIC slot net0..net31")))
}

pub(super) fn disks(
    spec: &MachineRequestSpec,
    images: &ImageVolumes,
) -> Result<Vec<DesiredDisk>, SpecError> {
    let iso = (spec.boot.iso.is_some() || spec.boot.image.is_some())
        .then(iso_slot)
        .transpose()?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, d) in spec.disks.iter().enumerate() {
        let field = format!("spec.disks[{i}]");
        let slot = DiskSlot::parse(&d.slot).map_err(|_| {
            SpecError::invalid(
                format!("{field}.slot"),
                format!(
                    "{:?} is not a disk slot (scsi0-30, virtio0-15, sata0-5, ide0-3)",
                    d.slot
                ),
            )
        })?;
        if Some(slot) == iso {
            return Err(SpecError::invalid(
                format!("{field}.slot"),
                format!(
                    "{slot} is taken by the ISO CD-ROM ({})",
                    if spec.boot.iso.is_some() {
                        "spec.boot.iso"
                    } else {
                        "spec.boot.image"
                    }
                ),
            ));
        }
        if !seen.insert(slot) {
            return Err(SpecError::invalid(
                format!("{field}.slot"),
                format!("{slot} is used by an earlier disk"),
            ));
        }
        if d.size_gib == 0 {
            return Err(SpecError::invalid(
                format!("{field}.sizeGiB"),
                "must be at least 1",
            ));
        }
        if d.ssd && slot.bus() == DiskBus::Virtio {
            return Err(SpecError::invalid(
                format!("{field}.ssd"),
                format!(
                    "cannot be set on {slot}: virtio disks have no ssd option (use scsi or sata)"
                ),
            ));
        }
        if d.iothread && matches!(slot.bus(), DiskBus::Sata | DiskBus::Ide) {
            return Err(SpecError::invalid(
                format!("{field}.iothread"),
                format!("cannot be set on {slot}: only scsi and virtio disks have an I/O thread"),
            ));
        }
        let import_from = match &d.image {
            Some(_) => Some(images.disk_volume(&field)?),
            None => None,
        };
        out.push(DesiredDisk {
            import_from,
            field,
            slot,
            storage: d.storage.clone(),
            size_gib: d.size_gib,
            ssd: d.ssd,
            discard: d.discard,
            iothread: d.iothread,
            cache: d.cache.map(cache_mode),
        });
    }
    Ok(out)
}

pub(super) fn nics(spec: &MachineRequestSpec) -> Result<Vec<DesiredNic>, SpecError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, n) in spec.networks.iter().enumerate() {
        let field = format!("spec.networks[{i}]");
        let index = nic_index(&format!("{field}.name"), &n.name)?;
        if !seen.insert(index) {
            return Err(SpecError::invalid(
                format!("{field}.name"),
                format!("{} is used by an earlier interface", n.name),
            ));
        }
        if let Some(v) = n.vlan
            && !(1..=4094).contains(&v)
        {
            return Err(SpecError::invalid(
                format!("{field}.vlan"),
                format!("{v} is outside 1..4094"),
            ));
        }
        out.push(DesiredNic {
            field,
            index,
            model: nic_model(n.model),
            bridge: n.bridge.clone(),
            vlan: n.vlan,
            mac: n.mac.as_ref().map(|m| m.to_ascii_uppercase()),
            firewall: n.firewall,
        });
    }
    Ok(out)
}
