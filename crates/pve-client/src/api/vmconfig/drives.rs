//! Drive slots (`scsi0`, `ide2`, ...), what sits in them (disks, CD-ROMs, the cloud-init drive)
//! with its property-string encoding, and the EFI vars disk (`efidisk0`).

use std::fmt;

use crate::api::validate_storage;
use crate::error::{PveError, Result};
use crate::propstring::{PropertyStringBuilder, check};

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

/// Builder methods that set an optional field: `field(value)` stores `Some(value)`.
macro_rules! option_setters {
    ($($field:ident: $t:ty),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        pub fn $field(mut self, value: $t) -> Self {
            self.$field = Some(value);
            self
        }
    )*};
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

    option_setters!(ssd: bool, discard: bool, iothread: bool, cache: CacheMode, backup: bool);
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
    pub(super) fn encode(&self) -> Result<String> {
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
