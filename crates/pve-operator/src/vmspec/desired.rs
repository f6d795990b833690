//! The spec, checked and translated into Proxmox terms once, for both the create call and the
//! drift comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use pve_client::api::vmconfig::{
    Bios, CacheMode, Disk, DiskBus, DiskSlot, Drive, EfiDisk, IpConfig, Ipv4Config, Nic, NicModel,
};
use pve_operator_api::machine_request::{
    Bios as SpecBios, DiskCache, MachineRequestSpec, NicModel as SpecNicModel,
};

use super::error::SpecError;
use super::marker::Marker;

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
}

impl DesiredDisk {
    /// A new disk allocated on its storage (`storage:SIZE,options`).
    pub fn new_drive(&self) -> Drive {
        let mut d = Disk::new(self.storage.clone(), self.size_gib as f64);
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

/// The cloud-init part of the spec.
#[derive(Debug, Clone)]
pub(crate) struct DesiredCloudInit {
    /// The drive's storage: `spec.cloudInit.storage`, else the first disk's.
    pub storage: Option<String>,
    pub user: Option<String>,
    pub sshkeys: Vec<String>,
    /// By NIC index: (`spec.cloudInit.ipConfigs[i]`, config).
    pub ipconfigs: BTreeMap<u8, (String, IpConfig)>,
    pub nameservers: Vec<IpAddr>,
    pub searchdomain: Option<String>,
}

/// The whole spec in Proxmox terms.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub baseline: Baseline,
    pub name: String,
    pub cores: u32,
    pub sockets: u32,
    pub cpu_type: Option<String>,
    pub memory_mib: u64,
    pub balloon_mib: Option<u64>,
    pub disks: Vec<DesiredDisk>,
    pub nics: Vec<DesiredNic>,
    /// The ISO volume for `ide2`.
    pub iso: Option<String>,
    pub network_boot: bool,
    pub cloud_init: Option<DesiredCloudInit>,
    pub bios: Bios,
    pub efidisk: Option<EfiDisk>,
    pub machine: Option<String>,
    pub agent: bool,
    pub tags: Vec<String>,
    pub description: String,
    pub smbios_uuid: Option<String>,
    pub onboot: bool,
    pub pool: Option<String>,
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

/// The description: the user's text, a blank line, the marker line.
pub(crate) fn description(user: Option<&str>, marker: &Marker) -> String {
    match user.map(str::trim_end).filter(|d| !d.trim().is_empty()) {
        Some(d) => format!("{d}\n\n{}", marker.description_line()),
        None => marker.description_line(),
    }
}

/// The tags: the managed tag, the uid tag, then the user's (without case-insensitive repeats).
pub(crate) fn tags(user: &[String], marker: &Marker) -> Vec<String> {
    let mut out: Vec<String> = vec![Marker::MANAGED_TAG.to_owned(), marker.uid_tag()];
    for t in user {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.clone());
        }
    }
    out
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
fn nic_index(field: &str, name: &str) -> Result<u8, SpecError> {
    name.strip_prefix("net")
        .and_then(|n| {
            n.parse::<u8>()
                .ok()
                .filter(|i| *i <= 31 && n == i.to_string())
        })
        .ok_or_else(|| SpecError::invalid(field, format!("{name:?} is not a NIC slot net0..net31")))
}

fn disks(spec: &MachineRequestSpec) -> Result<Vec<DesiredDisk>, SpecError> {
    let iso = spec.boot.iso.is_some().then(iso_slot).transpose()?;
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
                format!("{slot} is taken by the ISO CD-ROM (spec.boot.iso)"),
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
        out.push(DesiredDisk {
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

fn nics(spec: &MachineRequestSpec) -> Result<Vec<DesiredNic>, SpecError> {
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

fn cloud_init(
    spec: &MachineRequestSpec,
    nics: &[DesiredNic],
) -> Result<Option<DesiredCloudInit>, SpecError> {
    let Some(ci) = &spec.cloud_init else {
        return Ok(None);
    };
    let mut ipconfigs = BTreeMap::new();
    for (i, c) in ci.ip_configs.iter().enumerate() {
        let field = format!("spec.cloudInit.ipConfigs[{i}]");
        let index = nic_index(&format!("{field}.interface"), &c.interface)?;
        if !nics.iter().any(|n| n.index == index) {
            return Err(SpecError::invalid(
                format!("{field}.interface"),
                format!("{} is not one of spec.networks[].name", c.interface),
            ));
        }
        let ipv4 = match (c.dhcp, &c.address) {
            (true, None) => Ipv4Config::Dhcp,
            (false, Some(cidr)) => Ipv4Config::Static {
                cidr: cidr.clone(),
                gateway: c
                    .gateway
                    .as_deref()
                    .map(|g| {
                        g.parse::<Ipv4Addr>().map_err(|_| {
                            SpecError::invalid(
                                format!("{field}.gateway"),
                                format!("{g:?} is not an IPv4 address"),
                            )
                        })
                    })
                    .transpose()?,
            },
            _ => {
                return Err(SpecError::invalid(
                    field,
                    "must set either dhcp: true or a static address, not both or neither",
                ));
            }
        };
        if c.dhcp && c.gateway.is_some() {
            return Err(SpecError::invalid(
                format!("{field}.gateway"),
                "needs a static address",
            ));
        }
        let ip = IpConfig {
            ipv4: Some(ipv4),
            ipv6: None,
        };
        if ipconfigs.insert(index, (field.clone(), ip)).is_some() {
            return Err(SpecError::invalid(
                format!("{field}.interface"),
                format!("{} has an earlier entry", c.interface),
            ));
        }
    }
    let nameservers = ci
        .nameservers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpAddr>().map_err(|_| {
                SpecError::invalid(
                    format!("spec.cloudInit.nameservers[{i}]"),
                    format!("{s:?} is not an IP address"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, k) in ci.ssh_keys.iter().enumerate() {
        if k.trim().is_empty() || k.contains(['\n', '\r']) {
            return Err(SpecError::invalid(
                format!("spec.cloudInit.sshKeys[{i}]"),
                "must be one non-empty line",
            ));
        }
    }
    Ok(Some(DesiredCloudInit {
        storage: ci
            .storage
            .clone()
            .or_else(|| spec.disks.first().map(|d| d.storage.clone())),
        user: ci.user.clone(),
        sshkeys: ci.ssh_keys.iter().map(|k| k.trim().to_owned()).collect(),
        ipconfigs,
        nameservers,
        searchdomain: ci.search_domain.clone(),
    }))
}

impl Desired {
    /// Checks `spec` and translates it.
    pub fn from_spec(
        spec: &MachineRequestSpec,
        marker: &Marker,
        vm_name: &str,
    ) -> Result<Self, SpecError> {
        let boot = &spec.boot;
        let sources = [
            boot.iso.is_some(),
            boot.template.is_some(),
            boot.network.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(SpecError::invalid(
                "spec.boot",
                "must set exactly one boot source: iso, template or network",
            ));
        }
        let disks = disks(spec)?;
        let nics = nics(spec)?;
        if boot.network.is_some() && nics.is_empty() {
            return Err(SpecError::invalid(
                "spec.networks",
                "needs at least one interface to boot from the network (spec.boot.network)",
            ));
        }
        let cloud_init = cloud_init(spec, &nics)?;
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
        if spec.cpu.cores == 0 || spec.cpu.sockets == 0 {
            return Err(SpecError::invalid(
                "spec.cpu",
                "cores and sockets must be at least 1",
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
            iso: boot.iso.as_ref().map(|i| i.volume.clone()),
            network_boot: boot.network.is_some(),
            cloud_init,
            bios,
            efidisk,
            machine: fw.machine.clone(),
            agent: spec.guest_agent,
            tags: tags(&spec.tags, marker),
            description: description(spec.description.as_deref(), marker),
            smbios_uuid: marker.smbios_uuid().map(str::to_owned),
            onboot: spec.start_on_boot,
            pool: spec.pool.clone(),
        })
    }

    /// The boot order of a created VM: the network first for network boot (then the first
    /// disk, once something is installed on it); the first disk, then the ISO for ISO boot (an
    /// empty disk falls through to the installer, an installed one boots).
    pub fn boot_order(&self) -> Result<Vec<String>, SpecError> {
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
    pub fn needs_single_scsi(&self) -> bool {
        self.disks
            .iter()
            .any(|d| d.iothread && d.slot.bus() == DiskBus::Scsi)
    }

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
        match key {
            "name" => "spec.vmName",
            "cores" => "spec.cpu.cores",
            "sockets" => "spec.cpu.sockets",
            "cpu" => "spec.cpu.type",
            "memory" => "spec.memory.sizeMiB",
            "balloon" => "spec.memory.balloonMiB",
            "efidisk0" => "spec.firmware.efiDisk",
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
    pub fn rejected(&self, err: pve_client::PveError) -> SpecError {
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
