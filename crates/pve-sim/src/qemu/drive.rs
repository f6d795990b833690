//! Drive and NIC strings: parsing, sizes, and the canonical forms PVE writes
//! (`local-lvm:vm-100-disk-0,iothread=1,size=32G`, `virtio=BC:24:11:..,bridge=vmbr0`).

use std::collections::BTreeMap;

use crate::params::{self, Format, Param, PropMap, find, parse_property_string};
use crate::version::PveVersion;

/// Whether `key` is a drive (`ide0..3`, `sata0..5`, `scsi0..30`, `virtio0..15`, `efidisk0`, `tpmstate0`).
pub fn is_drive_key(key: &str) -> bool {
    let idx = |prefix: &str, max: u32| {
        key.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n < max && key.len() == prefix.len() + n.to_string().len())
    };
    idx("ide", 4)
        || idx("sata", 6)
        || idx("scsi", 31)
        || idx("virtio", 16)
        || key == "efidisk0"
        || key == "tpmstate0"
}

/// Whether `key` is a NIC (`net0..31`).
pub fn is_net_key(key: &str) -> bool {
    key.strip_prefix("net")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n < 32)
}

/// The NICs of a VM config in index order: each `netN`'s index and MAC address in lowercase
/// (empty where the value names none), as the guest sees its `ethN` interfaces.
pub fn nic_macs(conf: &BTreeMap<String, String>) -> Vec<(u32, String)> {
    let mut nics: Vec<(u32, String)> = conf
        .iter()
        .filter(|(k, _)| is_net_key(k))
        .filter_map(|(k, v)| {
            let n = k.trim_start_matches("net").parse().ok()?;
            let mac = Nic::parse(v).and_then(|nic| nic.mac).unwrap_or_default();
            Some((n, mac.to_ascii_lowercase()))
        })
        .collect();
    nics.sort();
    nics
}

/// Whether `key` is `unusedN`.
pub fn is_unused_key(key: &str) -> bool {
    key.strip_prefix("unused")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The property-string sub-keys of a VM config option (`net0`, `scsi0`, ...) in `version`'s
/// schema.
pub fn subkeys(version: PveVersion, key: &str) -> Option<&'static [Param]> {
    let table = params::table(version, "POST", "/nodes/{node}/qemu")?;
    match find(table, key)?.format {
        Format::Props(subs) => Some(subs),
        _ => None,
    }
}

/// Parses a stored option's property string with the sub-keys of any simulated version: the
/// request was validated with its version's schema already (an 8.4 `cyls`, a 9.1 `tpmstate0`
/// `format` both parse).
fn parse_option(key: &str, value: &str) -> Option<PropMap> {
    PveVersion::ALL
        .iter()
        .find_map(|v| parse_property_string(subkeys(*v, key)?, value).ok())
}

/// A parsed drive: the volume (`file`) and the other options.
#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    /// `local-lvm:32`, `local-lvm:vm-100-disk-0`, `local:iso/x.iso`, `none`, `cdrom`.
    pub file: String,
    /// Other options.
    pub opts: BTreeMap<String, String>,
}

impl Drive {
    /// Parses a drive string of option `key`.
    pub fn parse(key: &str, value: &str) -> Option<Drive> {
        let mut map = parse_option(key, value)?;
        let file = map.remove("file")?;
        Some(Drive { file, opts: map })
    }

    /// `file,opt=v,...` with the options sorted.
    pub fn print(&self) -> String {
        let mut out = self.file.clone();
        for (k, v) in &self.opts {
            out.push_str(&format!(",{k}={v}"));
        }
        out
    }

    /// Whether it is a CD-ROM (`media=cdrom`).
    pub fn is_cdrom(&self) -> bool {
        self.opts.get("media").is_some_and(|m| m == "cdrom")
    }

    /// `Some((storage, size_bytes))` for a new-disk request `STORAGE:SIZE` (or `SIZE` with
    /// the default storage).
    pub fn new_disk(&self, default_storage: Option<&str>) -> Option<(Option<String>, u64)> {
        let (storage, size) = match self.file.rsplit_once(':') {
            Some((s, n)) if !s.contains('/') => (Some(s.to_string()), n),
            Some(_) => return None,
            None => (default_storage.map(str::to_string), self.file.as_str()),
        };
        let gib: f64 = size.parse().ok()?;
        if !size.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        Some((storage, (gib * (1u64 << 30) as f64) as u64))
    }

    /// The storage of an existing volume (`local:iso/x.iso` -> `local`).
    pub fn storage(&self) -> Option<&str> {
        self.file.split_once(':').map(|(s, _)| s)
    }

    /// Whether it is a cloud-init drive request or volume.
    pub fn is_cloudinit(&self) -> bool {
        self.file.ends_with(":cloudinit") || self.file.contains("-cloudinit")
    }
}

/// Renders bytes as PVE's `format_size`: `32G`, `512M`, `4K`, or bytes.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (div, unit) in UNITS {
        if bytes >= div && bytes.is_multiple_of(div) {
            return format!("{}{unit}", bytes / div);
        }
    }
    bytes.to_string()
}

/// Parses `32G`, `512M`, `100` (bytes when `bytes_default`, else GiB).
pub fn parse_size(text: &str, bytes_default: bool) -> Option<u64> {
    let text = text.trim();
    let (num, mult) = match text.chars().last()? {
        'K' => (&text[..text.len() - 1], 1u64 << 10),
        'M' => (&text[..text.len() - 1], 1 << 20),
        'G' => (&text[..text.len() - 1], 1 << 30),
        'T' => (&text[..text.len() - 1], 1 << 40),
        _ => (text, if bytes_default { 1 } else { 1 << 30 }),
    };
    let v: f64 = num.parse().ok()?;
    (v >= 0.0).then_some((v * mult as f64) as u64)
}

/// The size recorded in a drive string (`size=32G`).
pub fn drive_size(value: &str) -> u64 {
    value
        .split(',')
        .find_map(|p| p.strip_prefix("size="))
        .and_then(|s| parse_size(s, true))
        .unwrap_or(0)
}

/// A parsed NIC.
#[derive(Debug, Clone, PartialEq)]
pub struct Nic {
    /// Model (`virtio`, `e1000`, ...).
    pub model: String,
    /// MAC address, if given.
    pub mac: Option<String>,
    /// Other options (`bridge`, `tag`, `firewall`, ...).
    pub opts: BTreeMap<String, String>,
}

impl Nic {
    /// Parses a `netN` value.
    pub fn parse(value: &str) -> Option<Nic> {
        let mut map = parse_option("net0", value)?;
        let model = map.remove("model")?;
        let mac = map.remove("macaddr").map(|m| m.to_ascii_uppercase());
        Some(Nic {
            model,
            mac,
            opts: map,
        })
    }

    /// `<model>=<MAC>,<other options sorted>`.
    pub fn print(&self) -> String {
        let mut out = match &self.mac {
            Some(mac) => format!("{}={mac}", self.model),
            None => self.model.clone(),
        };
        for (k, v) in &self.opts {
            out.push_str(&format!(",{k}={v}"));
        }
        out
    }

    /// The bridge.
    pub fn bridge(&self) -> Option<&str> {
        self.opts.get("bridge").map(String::as_str)
    }

    /// The VLAN tag.
    pub fn tag(&self) -> Option<&str> {
        self.opts.get("tag").map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_is_rewritten_to_canonical_form() {
        let mut nic = Nic::parse("virtio,tag=10,bridge=vmbr0").expect("parses");
        nic.mac = Some("BC:24:11:AA:BB:CC".into());
        assert_eq!(nic.print(), "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=10");
        let nic = Nic::parse("e1000=bc:24:11:00:00:01,bridge=vmbr1").expect("parses");
        assert_eq!(nic.model, "e1000");
        assert_eq!(nic.mac.as_deref(), Some("BC:24:11:00:00:01"));
    }

    #[test]
    fn new_disk_requests_and_sizes() {
        let d = Drive::parse("scsi0", "local-lvm:32,iothread=1").expect("parses");
        assert_eq!(d.new_disk(None), Some((Some("local-lvm".into()), 32 << 30)));
        let iso = Drive::parse("ide2", "local:iso/x.iso,media=cdrom").expect("parses");
        assert_eq!(iso.new_disk(None), None);
        assert!(iso.is_cdrom());
        assert_eq!(
            Drive::parse("scsi0", "0.5").and_then(|d| d.new_disk(Some("s"))),
            Some((Some("s".into()), 512 << 20))
        );
        assert_eq!(format_size(32 << 30), "32G");
        assert_eq!(format_size(512 << 20), "512M");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(
            parse_size("+10G".trim_start_matches('+'), true),
            Some(10 << 30)
        );
        assert!(is_drive_key("scsi30") && !is_drive_key("scsi31") && !is_drive_key("scsi01"));
    }
}
