//! A typed VM configuration builder producing the parameters of `POST /nodes/{node}/qemu`
//! (create) and `POST|PUT /nodes/{node}/qemu/{vmid}/config` (update), and a decoded view of
//! `GET .../config`.
//!
//! Every value is checked and every property string is built by [`crate::propstring`], so a
//! value can never inject another key or parameter.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use super::{validate_dns_name, validate_storage};
use crate::error::{PveError, Result};
use crate::propstring::{PropertyString, PropertyStringBuilder, check};
use crate::request::{ParamValue, Params};
use crate::secret::Secret;

/// A disk bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskBus {
    /// `scsiN` (0..=30).
    Scsi,
    /// `virtioN` (0..=15).
    Virtio,
    /// `sataN` (0..=5).
    Sata,
    /// `ideN` (0..=3).
    Ide,
}

impl DiskBus {
    fn name(self) -> &'static str {
        match self {
            DiskBus::Scsi => "scsi",
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
            DiskBus::Ide => "ide",
        }
    }

    fn max_index(self) -> u8 {
        match self {
            DiskBus::Scsi => 30,
            DiskBus::Virtio => 15,
            DiskBus::Sata => 5,
            DiskBus::Ide => 3,
        }
    }
}

/// A drive slot such as `scsi0` or `ide2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiskSlot {
    bus: DiskBus,
    index: u8,
}

impl DiskSlot {
    /// A slot on `bus`; the index must exist on that bus.
    pub fn new(bus: DiskBus, index: u8) -> Result<Self> {
        if index > bus.max_index() {
            return Err(PveError::invalid_input(
                format!("{}{index}", bus.name()),
                format!("{} has slots 0..={}", bus.name(), bus.max_index()),
            ));
        }
        Ok(Self { bus, index })
    }

    /// `scsiN`.
    pub fn scsi(index: u8) -> Result<Self> {
        Self::new(DiskBus::Scsi, index)
    }

    /// `virtioN`.
    pub fn virtio(index: u8) -> Result<Self> {
        Self::new(DiskBus::Virtio, index)
    }

    /// `sataN`.
    pub fn sata(index: u8) -> Result<Self> {
        Self::new(DiskBus::Sata, index)
    }

    /// `ideN`.
    pub fn ide(index: u8) -> Result<Self> {
        Self::new(DiskBus::Ide, index)
    }

    /// Parses `scsi0`, `virtio1`, ...
    pub fn parse(s: &str) -> Result<Self> {
        for bus in [DiskBus::Scsi, DiskBus::Virtio, DiskBus::Sata, DiskBus::Ide] {
            if let Some(n) = s.strip_prefix(bus.name())
                && let Ok(i) = n.parse::<u8>()
                && n == i.to_string()
            {
                return Self::new(bus, i);
            }
        }
        Err(PveError::invalid_input(
            "disk",
            format!("{s:?} is not a drive slot such as scsi0"),
        ))
    }

    /// The bus.
    pub fn bus(self) -> DiskBus {
        self.bus
    }
}

impl fmt::Display for DiskSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.bus.name(), self.index)
    }
}

/// A drive's cache mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// `none`.
    None,
    /// `writethrough`.
    Writethrough,
    /// `writeback`.
    Writeback,
    /// `unsafe`.
    Unsafe,
    /// `directsync`.
    Directsync,
}

impl CacheMode {
    fn as_str(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::Writethrough => "writethrough",
            CacheMode::Writeback => "writeback",
            CacheMode::Unsafe => "unsafe",
            CacheMode::Directsync => "directsync",
        }
    }
}

/// Where a disk's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskSource {
    /// Allocate a new volume of `size_gib` GiB on `storage` (`STORAGE:SIZE`).
    New {
        /// The storage ID.
        storage: String,
        /// Size in GiB (fractions allowed).
        size_gib: f64,
    },
    /// Attach an existing volume (`local-lvm:vm-100-disk-0`).
    Existing(String),
    /// Create a new volume on `storage` by importing `from` (`STORAGE:0,import-from=VOLID`).
    Import {
        /// The target storage.
        storage: String,
        /// The source volume ID.
        from: String,
    },
}

/// A hard disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// The data source.
    pub source: DiskSource,
    /// Report as SSD to the guest (not on virtio).
    pub ssd: Option<bool>,
    /// Pass discard/TRIM to the storage (`discard=on`).
    pub discard: Option<bool>,
    /// A dedicated IO thread (scsi with virtio-scsi-single, virtio).
    pub iothread: Option<bool>,
    /// Cache mode.
    pub cache: Option<CacheMode>,
    /// Include in backups.
    pub backup: Option<bool>,
}

impl Disk {
    /// A new disk of `size_gib` GiB on `storage`.
    pub fn new(storage: impl Into<String>, size_gib: f64) -> Self {
        Self::from_source(DiskSource::New {
            storage: storage.into(),
            size_gib,
        })
    }

    /// An existing volume.
    pub fn existing(volid: impl Into<String>) -> Self {
        Self::from_source(DiskSource::Existing(volid.into()))
    }

    /// A new volume on `storage` imported from `from`.
    pub fn import(storage: impl Into<String>, from: impl Into<String>) -> Self {
        Self::from_source(DiskSource::Import {
            storage: storage.into(),
            from: from.into(),
        })
    }

    fn from_source(source: DiskSource) -> Self {
        Self {
            source,
            ssd: None,
            discard: None,
            iothread: None,
            cache: None,
            backup: None,
        }
    }

    /// Sets `ssd`.
    pub fn ssd(mut self, on: bool) -> Self {
        self.ssd = Some(on);
        self
    }

    /// Sets `discard`.
    pub fn discard(mut self, on: bool) -> Self {
        self.discard = Some(on);
        self
    }

    /// Sets `iothread`.
    pub fn iothread(mut self, on: bool) -> Self {
        self.iothread = Some(on);
        self
    }

    /// Sets `cache`.
    pub fn cache(mut self, mode: CacheMode) -> Self {
        self.cache = Some(mode);
        self
    }

    /// Sets `backup`.
    pub fn backup(mut self, on: bool) -> Self {
        self.backup = Some(on);
        self
    }
}

/// What sits in a drive slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Drive {
    /// A hard disk.
    Disk(Disk),
    /// A CD-ROM with an ISO volume (`local:iso/debian-12.iso`).
    CdromIso(String),
    /// An empty CD-ROM drive.
    CdromEmpty,
    /// The cloud-init drive, allocated on `storage`.
    CloudInit {
        /// The storage ID.
        storage: String,
    },
}

fn size_text(field: &str, size_gib: f64) -> Result<String> {
    if !size_gib.is_finite() || size_gib <= 0.0 || size_gib > 1_048_576.0 {
        return Err(PveError::invalid_input(
            field,
            format!("size {size_gib} GiB must be a positive number of GiB"),
        ));
    }
    let text = if size_gib.fract() == 0.0 {
        format!("{size_gib:.0}")
    } else {
        let t = format!("{size_gib:.3}");
        t.trim_end_matches('0').to_owned()
    };
    Ok(text)
}

impl Drive {
    /// Encodes the drive for `slot`.
    pub fn encode(&self, slot: DiskSlot) -> Result<String> {
        let field = slot.to_string();
        let mut b = PropertyStringBuilder::new(&field);
        match self {
            Drive::Disk(d) => {
                match &d.source {
                    DiskSource::New { storage, size_gib } => {
                        validate_storage(&format!("{field}.storage"), storage)?;
                        b.default_value(
                            "file",
                            &format!("{storage}:{}", size_text(&field, *size_gib)?),
                            check::any,
                        )?;
                    }
                    DiskSource::Existing(volid) => {
                        b.default_value("file", volid, check::volume_id)?;
                    }
                    DiskSource::Import { storage, from } => {
                        validate_storage(&format!("{field}.storage"), storage)?;
                        b.default_value("file", &format!("{storage}:0"), check::any)?;
                        b.push("import-from", from, check::volume_id)?;
                    }
                }
                if d.ssd.is_some() && slot.bus == DiskBus::Virtio {
                    return Err(PveError::invalid_input(
                        format!("{field}.ssd"),
                        "virtio disks have no ssd option",
                    ));
                }
                if d.iothread.is_some() && matches!(slot.bus, DiskBus::Sata | DiskBus::Ide) {
                    return Err(PveError::invalid_input(
                        format!("{field}.iothread"),
                        "iothread exists only for scsi and virtio disks",
                    ));
                }
                if let Some(c) = d.cache {
                    b.push("cache", c.as_str(), check::word)?;
                }
                if let Some(on) = d.discard {
                    b.push("discard", if on { "on" } else { "ignore" }, check::word)?;
                }
                b.push_opt_bool("iothread", d.iothread);
                b.push_opt_bool("ssd", d.ssd);
                b.push_opt_bool("backup", d.backup);
            }
            Drive::CdromIso(volid) => {
                b.default_value("file", volid, check::volume_id)?;
                b.push("media", "cdrom", check::word)?;
            }
            Drive::CdromEmpty => {
                b.default_value("file", "none", check::any)?;
                b.push("media", "cdrom", check::word)?;
            }
            Drive::CloudInit { storage } => {
                validate_storage(&format!("{field}.storage"), storage)?;
                b.default_value("file", &format!("{storage}:cloudinit"), check::any)?;
                b.push("media", "cdrom", check::word)?;
            }
        }
        Ok(b.build())
    }
}

/// The EFI vars disk (`efidisk0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiDisk {
    /// The storage ID.
    pub storage: String,
    /// Use the 4 MiB OVMF vars (required for Secure Boot); otherwise 2 MiB.
    pub efitype_4m: bool,
    /// Enroll the distribution and Microsoft Secure Boot keys.
    pub pre_enrolled_keys: Option<bool>,
}

impl EfiDisk {
    fn encode(&self) -> Result<String> {
        validate_storage("efidisk0.storage", &self.storage)?;
        let mut b = PropertyStringBuilder::new("efidisk0");
        b.default_value("file", &format!("{}:1", self.storage), check::any)?;
        b.push(
            "efitype",
            if self.efitype_4m { "4m" } else { "2m" },
            check::word,
        )?;
        b.push_opt_bool("pre-enrolled-keys", self.pre_enrolled_keys);
        Ok(b.build())
    }
}

/// A NIC model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// `virtio` (paravirtualised, recommended).
    Virtio,
    /// `e1000`.
    E1000,
    /// `e1000e`.
    E1000e,
    /// `rtl8139`.
    Rtl8139,
    /// `vmxnet3`.
    Vmxnet3,
}

impl NicModel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::E1000e => "e1000e",
            NicModel::Rtl8139 => "rtl8139",
            NicModel::Vmxnet3 => "vmxnet3",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            NicModel::Virtio,
            NicModel::E1000,
            NicModel::E1000e,
            NicModel::Rtl8139,
            NicModel::Vmxnet3,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// A network device (`netN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// The model.
    pub model: NicModel,
    /// The bridge (`vmbr0`).
    pub bridge: String,
    /// The VLAN tag (1..=4094).
    pub tag: Option<u16>,
    /// The MAC address; Proxmox generates one when absent.
    pub macaddr: Option<String>,
    /// Enable the Proxmox firewall on this NIC.
    pub firewall: Option<bool>,
    /// MTU (1..=65520; 1 = bridge MTU).
    pub mtu: Option<u16>,
    /// Disconnected.
    pub link_down: Option<bool>,
}

impl Nic {
    /// A NIC of `model` on `bridge`.
    pub fn new(model: NicModel, bridge: impl Into<String>) -> Self {
        Self {
            model,
            bridge: bridge.into(),
            tag: None,
            macaddr: None,
            firewall: None,
            mtu: None,
            link_down: None,
        }
    }

    /// Sets the VLAN tag.
    pub fn tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Sets the MAC address.
    pub fn macaddr(mut self, mac: impl Into<String>) -> Self {
        self.macaddr = Some(mac.into());
        self
    }

    /// Sets the firewall flag.
    pub fn firewall(mut self, on: bool) -> Self {
        self.firewall = Some(on);
        self
    }

    /// Encodes as `virtio=MAC,bridge=vmbr0,tag=10,firewall=1` (Proxmox's canonical form).
    pub fn encode(&self, index: u8) -> Result<String> {
        let field = format!("net{index}");
        let mut b = PropertyStringBuilder::new(&field);
        match &self.macaddr {
            Some(mac) => b.push(self.model.as_str(), mac, check::mac)?,
            None => b.push("model", self.model.as_str(), check::word)?,
        };
        b.push("bridge", &self.bridge, check::bridge)?;
        if let Some(t) = self.tag {
            b.push("tag", &t.to_string(), check::vlan)?;
        }
        b.push_opt_bool("firewall", self.firewall);
        b.push_opt_bool("link_down", self.link_down);
        if let Some(m) = self.mtu {
            if !(1..=65520).contains(&m) {
                return Err(PveError::invalid_input(
                    format!("{field}.mtu"),
                    format!("{m} is outside 1..=65520"),
                ));
            }
            b.push_uint("mtu", u64::from(m));
        }
        Ok(b.build())
    }

    /// Decodes a `netN` value as Proxmox returns it (`virtio=BC:24:11:..,bridge=vmbr0,tag=10`).
    pub fn parse(value: &str) -> Result<Self> {
        let p = PropertyString::parse(value)?;
        let mut model = None;
        let mut macaddr = p.get("macaddr").map(str::to_owned);
        for (k, v) in p.entries() {
            match k {
                Some(k) if NicModel::parse(k).is_some() => {
                    model = NicModel::parse(k);
                    macaddr = Some(v.to_owned());
                }
                Some("model") | None => model = NicModel::parse(v).or(model),
                _ => {}
            }
        }
        let model = model.ok_or_else(|| {
            PveError::invalid_input("net", format!("{value:?} names no known NIC model"))
        })?;
        Ok(Self {
            model,
            bridge: p.get("bridge").unwrap_or_default().to_owned(),
            tag: p.get("tag").and_then(|t| t.parse().ok()),
            macaddr,
            firewall: p.get_bool("firewall"),
            mtu: p.get("mtu").and_then(|t| t.parse().ok()),
            link_down: p.get_bool("link_down"),
        })
    }
}

/// IPv4 settings of a cloud-init interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Config {
    /// `ip=dhcp`.
    Dhcp,
    /// `ip=ADDR/PREFIX[,gw=GW]`.
    Static {
        /// Address in CIDR notation.
        cidr: String,
        /// Gateway.
        gateway: Option<Ipv4Addr>,
    },
}

/// IPv6 settings of a cloud-init interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Config {
    /// `ip6=dhcp`.
    Dhcp,
    /// `ip6=auto` (SLAAC).
    Auto,
    /// `ip6=ADDR/PREFIX[,gw6=GW]`.
    Static {
        /// Address in CIDR notation.
        cidr: String,
        /// Gateway.
        gateway: Option<Ipv6Addr>,
    },
}

/// A cloud-init `ipconfigN`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpConfig {
    /// IPv4.
    pub ipv4: Option<Ipv4Config>,
    /// IPv6.
    pub ipv6: Option<Ipv6Config>,
}

impl IpConfig {
    fn encode(&self, index: u8) -> Result<String> {
        let mut b = PropertyStringBuilder::new(format!("ipconfig{index}"));
        match &self.ipv4 {
            Some(Ipv4Config::Dhcp) => {
                b.push("ip", "dhcp", check::word)?;
            }
            Some(Ipv4Config::Static { cidr, gateway }) => {
                b.push("ip", cidr, check::ipv4_cidr)?;
                if let Some(g) = gateway {
                    b.push("gw", &g.to_string(), check::ipv4)?;
                }
            }
            None => {}
        }
        match &self.ipv6 {
            Some(Ipv6Config::Dhcp) => {
                b.push("ip6", "dhcp", check::word)?;
            }
            Some(Ipv6Config::Auto) => {
                b.push("ip6", "auto", check::word)?;
            }
            Some(Ipv6Config::Static { cidr, gateway }) => {
                b.push("ip6", cidr, check::ipv6_cidr)?;
                if let Some(g) = gateway {
                    b.push("gw6", &g.to_string(), check::ipv6)?;
                }
            }
            None => {}
        }
        let s = b.build();
        if s.is_empty() {
            return Err(PveError::invalid_input(
                format!("ipconfig{index}"),
                "sets neither IPv4 nor IPv6",
            ));
        }
        Ok(s)
    }
}

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

/// Encodes SSH public keys as Proxmox requires for `sshkeys`: each checked by
/// [`crate::sshkey::check_public_key`] (it goes unquoted into cloud-init's YAML), newline-joined, then
/// percent-encoded like JavaScript's `encodeURIComponent` (everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )`
/// becomes `%XX`, spaces as `%20`), which is what PVE's `urlencoded` format accepts.
pub fn encode_sshkeys<S: AsRef<str>>(keys: &[S]) -> Result<String> {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'!')
        .remove(b'~')
        .remove(b'*')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')');
    let mut lines = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_ref().trim_end_matches(' ');
        crate::sshkey::check_public_key(k)
            .map_err(|m| PveError::invalid_input(format!("sshkeys[{i}]"), m))?;
        lines.push(k);
    }
    Ok(percent_encoding::utf8_percent_encode(&lines.join("\n"), KEEP).to_string())
}

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

/// Whether `m` is a QEMU machine type as PVE 8.4's schema allows (`machine` `type`, at most 40
/// characters): `pc`, `q35`, `virt`, `pc[-i440fx]-X.Y[+pveN][.pxe]`, `pc-q35-X.Y[+pveN][.pxe]`,
/// `virt[-X.Y][+pveN]`.
fn is_machine_type(m: &str) -> bool {
    /// Strips `\d+(\.\d+)+`.
    fn version(s: &str) -> Option<&str> {
        let mut rest = s.strip_prefix(|c: char| c.is_ascii_digit())?;
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let mut parts = 0;
        while let Some(r) = rest.strip_prefix('.')
            && r.starts_with(|c: char| c.is_ascii_digit())
        {
            rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
            parts += 1;
        }
        (parts > 0).then_some(rest)
    }
    /// Strips `(\+pve\d+)?`.
    fn pve_suffix(s: &str) -> &str {
        match s.strip_prefix("+pve") {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => {
                r.trim_start_matches(|c: char| c.is_ascii_digit())
            }
            _ => s,
        }
    }
    if m.len() > 40 {
        return false;
    }
    if matches!(m, "pc" | "q35" | "virt") {
        return true;
    }
    let versioned = ["pc-i440fx-", "pc-q35-", "pc-"]
        .iter()
        .find_map(|p| m.strip_prefix(p).and_then(version));
    if let Some(rest) = versioned {
        let rest = pve_suffix(rest);
        return rest.is_empty() || rest == ".pxe";
    }
    match m.strip_prefix("virt") {
        Some(rest) => {
            let rest = match rest.strip_prefix('-') {
                Some(r) => match version(r) {
                    Some(r) => r,
                    None => return false,
                },
                None => rest,
            };
            pve_suffix(rest).is_empty()
        }
        None => false,
    }
}

fn err(field: &str, msg: impl Into<String>) -> PveError {
    PveError::invalid_input(field, msg)
}

/// A Linux user name as cloud-init creates it: `[a-z_][a-z0-9_-]*`, at most 32 characters.
fn is_unix_user(u: &str) -> bool {
    let mut chars = u.chars();
    u.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// Proxmox hashes a plain `cipassword`, but stores one already in crypt form
/// (`$1$`, `$5$`, `$6$`, `$2a$`, `$2y$` ...) as is and writes it unquoted into cloud-init's YAML
/// (`password: HASH`); such a value must be a crypt string (`[A-Za-z0-9./$=]`, `rounds=N`), so
/// that it cannot add a key or a line. No value may carry a control, format or line-separator
/// character. The value is never quoted in the error.
fn check_cipassword(pw: &str) -> Result<()> {
    if pw.is_empty() || pw.chars().any(crate::sshkey::is_forbidden) {
        return Err(err(
            "cipassword",
            "must be non-empty, without control, format or line-separator characters",
        ));
    }
    let pre_hashed = ["$1$", "$5$", "$6$", "$2a$", "$2y$", "$2b$", "$y$", "$7$"]
        .iter()
        .any(|p| pw.starts_with(p));
    if pre_hashed
        && !pw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '$' | '='))
    {
        return Err(err(
            "cipassword",
            "looks like a crypt hash (it starts with $id$), which Proxmox writes into cloud-init \
             as is, but has characters outside a crypt hash (A-Z a-z 0-9 . / $ =)",
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(err(
            "tags",
            format!("{tag:?} is not a Proxmox tag (letters, digits, '_', then also '-', '+', '.')"),
        ))
    }
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

    /// The parameters of this configuration (without `vmid`, `pool`, `start`).
    pub fn to_params(&self) -> Result<Params> {
        let mut p = Params::new();
        if let Some(n) = &self.name {
            validate_dns_name("name", n)?;
            p.str("name", n);
        }
        if let Some(c) = self.cores {
            if !(1..=1024).contains(&c) {
                return Err(err("cores", format!("{c} is outside 1..=1024")));
            }
            p.int("cores", i64::from(c));
        }
        if let Some(s) = self.sockets {
            if !(1..=16).contains(&s) {
                return Err(err("sockets", format!("{s} is outside 1..=16")));
            }
            p.int("sockets", i64::from(s));
        }
        if let Some(cpu) = &self.cpu {
            let mut b = PropertyStringBuilder::new("cpu");
            b.default_value("cputype", cpu, check::word)?;
            p.str("cpu", b.build());
        }
        if let Some(m) = self.memory_mib {
            if m < 16 {
                return Err(err("memory", format!("{m} MiB is below the minimum of 16")));
            }
            // `[current=]<integer>` since 8.1; a plain integer also satisfies 8.0.
            p.str("memory", m.to_string());
        }
        if let Some(b) = self.balloon_mib {
            if let Some(m) = self.memory_mib
                && b > m
            {
                return Err(err("balloon", format!("{b} MiB exceeds memory ({m} MiB)")));
            }
            p.int(
                "balloon",
                i64::try_from(b).map_err(|_| err("balloon", "too large"))?,
            );
        }
        if let Some(h) = self.scsihw {
            p.str("scsihw", h.as_str());
        }
        for (slot, drive) in &self.drives {
            p.str(slot.to_string(), drive.encode(*slot)?);
        }
        let cloudinit_drives = self
            .drives
            .values()
            .filter(|d| matches!(d, Drive::CloudInit { .. }))
            .count();
        if cloudinit_drives > 1 {
            return Err(err("drives", "at most one cloud-init drive"));
        }
        if let Some(e) = &self.efidisk {
            p.str("efidisk0", e.encode()?);
        }
        for (i, nic) in &self.nics {
            if *i > 31 {
                return Err(err(&format!("net{i}"), "NICs are net0..=net31"));
            }
            p.str(format!("net{i}"), nic.encode(*i)?);
        }
        if let Some(u) = &self.ciuser {
            // Written unquoted into cloud-init's YAML (`user: NAME`): only a Linux user name,
            // so no YAML indicator ([ { * & ! | > ' " % @ # -), separator or line break.
            if !is_unix_user(u) {
                return Err(err(
                    "ciuser",
                    format!(
                        "{u:?} is not a user name (a lowercase letter or '_', then lowercase \
                         letters, digits, '_' and '-'; at most 32 characters)"
                    ),
                ));
            }
            p.str("ciuser", u);
        }
        if let Some(pw) = &self.cipassword {
            check_cipassword(pw.expose())?;
            p.set("cipassword", ParamValue::Secret(pw.clone()));
        }
        if !self.sshkeys.is_empty() {
            p.str("sshkeys", encode_sshkeys(&self.sshkeys)?);
        }
        for (i, ip) in &self.ipconfigs {
            if *i > 31 {
                return Err(err(
                    &format!("ipconfig{i}"),
                    "ipconfigs are ipconfig0..=ipconfig31",
                ));
            }
            p.str(format!("ipconfig{i}"), ip.encode(*i)?);
        }
        if !self.nameservers.is_empty() {
            let list: Vec<String> = self.nameservers.iter().map(IpAddr::to_string).collect();
            p.str("nameserver", list.join(" "));
        }
        if let Some(d) = &self.searchdomain {
            for name in d.split(' ') {
                validate_dns_name("searchdomain", name)?;
            }
            p.str("searchdomain", d);
        }
        if !self.boot_order.is_empty() {
            let mut b = PropertyStringBuilder::new("boot");
            b.push_list("order", &self.boot_order, check::boot_device)?;
            p.str("boot", b.build());
        }
        if let Some(o) = &self.ostype {
            if !OS_TYPES.contains(&o.as_str()) {
                return Err(err(
                    "ostype",
                    format!("{o:?} is not one of {}", OS_TYPES.join(", ")),
                ));
            }
            p.str("ostype", o);
        }
        if let Some(a) = self.agent {
            let mut b = PropertyStringBuilder::new("agent");
            b.push_bool("enabled", a.enabled);
            b.push_opt_bool("fstrim_cloned_disks", a.fstrim_cloned_disks);
            p.str("agent", b.build());
        }
        if let Some(bios) = self.bios {
            p.str(
                "bios",
                match bios {
                    Bios::Seabios => "seabios",
                    Bios::Ovmf => "ovmf",
                },
            );
        }
        if let Some(m) = &self.machine {
            if !is_machine_type(m) {
                return Err(err(
                    "machine",
                    format!("{m:?} is not a machine type like q35 or pc-q35-8.1"),
                ));
            }
            p.str("machine", m);
        }
        if !self.tags.is_empty() {
            for t in &self.tags {
                check_tag(t)?;
            }
            p.str("tags", self.tags.join(";"));
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 8192 {
                return Err(err("description", "longer than 8192 characters"));
            }
            if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(err(
                    "description",
                    "must not contain control characters other than newline and tab",
                ));
            }
            p.str("description", d);
        }
        if let Some(u) = &self.smbios_uuid {
            let mut b = PropertyStringBuilder::new("smbios1");
            b.push("uuid", u, check::uuid)?;
            p.str("smbios1", b.build());
        }
        if let Some(o) = self.onboot {
            p.bool("onboot", o);
        }
        Ok(p)
    }
}

/// `GET /nodes/{node}/qemu/{vmid}/config`: every key as text, plus the `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmConfigView {
    /// SHA-1 of the config file; send it back with an update for optimistic locking.
    pub digest: String,
    /// All other keys; numbers are rendered as text (`memory` is a string since PVE 8.1 anyway).
    pub values: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for VmConfigView {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let mut view = VmConfigView::default();
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                    match other {
                        serde_json::Value::Bool(b) => if b { "1" } else { "0" }.to_owned(),
                        n => n.to_string(),
                    }
                }
                other => other.to_string(),
            };
            if k == "digest" {
                view.digest = text;
            } else {
                view.values.insert(k, text);
            }
        }
        Ok(view)
    }
}

impl VmConfigView {
    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The config lock (`create`, `clone`, `destroyed`, ...).
    pub fn lock(&self) -> Option<&str> {
        self.get("lock")
    }

    /// `memory` in MiB (`2048` or `current=2048`).
    pub fn memory_mib(&self) -> Option<u64> {
        let v = self.get("memory")?;
        v.parse()
            .ok()
            .or_else(|| PropertyString::parse(v).ok()?.get("current")?.parse().ok())
    }

    /// An integer key (`cores`, `sockets`, `balloon`).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// The tags (split at `;`, `,` or spaces).
    pub fn tags(&self) -> Vec<&str> {
        self.get("tags")
            .unwrap_or_default()
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The `smbios1` uuid.
    pub fn smbios_uuid(&self) -> Option<String> {
        Some(
            PropertyString::parse(self.get("smbios1")?)
                .ok()?
                .get("uuid")?
                .to_owned(),
        )
    }

    /// The NICs (`netN`) that parse.
    pub fn nics(&self) -> BTreeMap<u8, Nic> {
        self.values
            .iter()
            .filter_map(|(k, v)| {
                let i: u8 = k.strip_prefix("net")?.parse().ok()?;
                Some((i, Nic::parse(v).ok()?))
            })
            .collect()
    }

    /// The drives: slot → (volume, size text), for disks and CD-ROMs.
    pub fn drives(&self) -> BTreeMap<DiskSlot, (String, Option<String>)> {
        self.values
            .iter()
            .filter_map(|(k, v)| {
                let slot = DiskSlot::parse(k).ok()?;
                let p = PropertyString::parse(v).ok()?;
                Some((
                    slot,
                    (
                        p.default_value()?.to_owned(),
                        p.get("size").map(str::to_owned),
                    ),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
