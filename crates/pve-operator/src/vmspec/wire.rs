//! Reading values the way Proxmox returns them from `GET .../config`: drives rewritten to
//! `storage:vm-<id>-disk-<n>,<options sorted>,size=32G`, URL-encoded `sshkeys`, descriptions
//! stored as comment lines (and read back with a trailing newline), property strings whose
//! first value may or may not carry its key.

use std::collections::BTreeMap;

use pve_client::api::vmconfig::{DiskSlot, VmConfigView};
use pve_client::propstring::PropertyString;

/// One GiB in bytes.
pub(crate) const GIB: u64 = 1 << 30;

/// Whether `s` is a UUID (`8-4-4-4-12` hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, l)| g.len() == l && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A size as Proxmox writes it (`32G`, `512M`, `4M`, `1T`, `2.5G`, or plain bytes) in bytes.
pub(crate) fn parse_size_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        (i, 'T' | 't') => (&text[..i], 1 << 40),
        _ => (text, 1),
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(unit);
    }
    let f: f64 = number.parse().ok()?;
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    // Sizes are far below 2^53 bytes, where f64 is exact enough; rounding up keeps a
    // fractional size from looking smaller than it is.
    Some((f * unit as f64).ceil() as u64)
}

/// A drive (`scsi0`, `ide2`, `efidisk0`, ...) as Proxmox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriveView {
    /// The volume (`local-lvm:vm-100-disk-0`), `none` or `cdrom`.
    pub volume: String,
    /// The decoded options.
    props: PropertyString,
}

impl DriveView {
    /// Parses a drive value; `None` when it is not a property string with a volume.
    pub fn parse(value: &str) -> Option<Self> {
        let props = PropertyString::parse(value).ok()?;
        let volume = props
            .default_value()
            .or_else(|| props.get("file"))?
            .to_owned();
        Some(Self { volume, props })
    }

    /// The storage of the volume (`local-lvm`), if it is on one.
    pub fn storage(&self) -> Option<&str> {
        self.volume.split_once(':').map(|(s, _)| s)
    }

    /// A CD-ROM drive (ISO, empty, physical, or the cloud-init drive).
    pub fn is_cdrom(&self) -> bool {
        self.props.get("media") == Some("cdrom")
    }

    /// The cloud-init drive (`local-lvm:vm-100-cloudinit`, `local:100/vm-100-cloudinit.qcow2`).
    pub fn is_cloudinit(&self) -> bool {
        let name = self
            .volume
            .split_once(':')
            .map_or(self.volume.as_str(), |(_, n)| n);
        let file = name.rsplit('/').next().unwrap_or(name);
        let stem = file.split_once('.').map_or(file, |(s, _)| s);
        stem.ends_with("-cloudinit") || name == "cloudinit"
    }

    /// The size in bytes, when recorded.
    pub fn size_bytes(&self) -> Option<u64> {
        parse_size_bytes(self.props.get("size")?)
    }

    /// The size as Proxmox wrote it (`32G`).
    pub fn size_text(&self) -> Option<&str> {
        self.props.get("size")
    }

    /// A `0`/`1` option, absent meaning off.
    pub fn flag(&self, key: &str) -> bool {
        self.props.get_bool(key).unwrap_or(false)
    }

    /// `discard=on` (absent or `ignore` meaning off).
    pub fn discard(&self) -> bool {
        self.props.get("discard") == Some("on")
    }

    /// The cache mode; absent is Proxmox's default, `none`.
    pub fn cache(&self) -> &str {
        self.props.get("cache").unwrap_or("none")
    }
}

/// The drives of a config by slot (`scsiN`, `virtioN`, `sataN`, `ideN`); a value that does
/// not parse maps to `None` (the slot is still taken).
pub(crate) fn drives(view: &VmConfigView) -> BTreeMap<DiskSlot, Option<DriveView>> {
    view.values
        .iter()
        .filter_map(|(k, v)| Some((DiskSlot::parse(k).ok()?, DriveView::parse(v))))
        .collect()
}

/// The first value of a property string, written with or without its key
/// (`cputype=host` / `host`, `enabled=1` / `1`, `type=q35` / `q35`).
pub(crate) fn main_value<'a>(props: &'a PropertyString, key: &str) -> Option<&'a str> {
    props.default_value().or_else(|| props.get(key))
}

/// The main value of the property string at `config[config_key]`.
pub(crate) fn main_value_of(view: &VmConfigView, config_key: &str, key: &str) -> Option<String> {
    let props = PropertyString::parse(view.get(config_key)?).ok()?;
    main_value(&props, key).map(str::to_owned)
}

/// Decodes `sshkeys` (percent-encoded, newline-separated) into one trimmed key per entry.
pub(crate) fn decode_sshkeys(encoded: &str) -> Vec<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let Some(hex) = encoded.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A description as comparable text: Proxmox stores it as `#` lines and returns it with a
/// trailing newline, and drops trailing blank lines.
pub(crate) fn normalise_description(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_owned()
}

/// Tags as a comparable set: lowercase, sorted, without duplicates (what a config update
/// makes of them).
pub(crate) fn normalise_tags<S: AsRef<str>>(tags: &[S]) -> Vec<String> {
    let mut list: Vec<String> = tags
        .iter()
        .map(|t| t.as_ref().trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list
}

/// A `0`/`1` key, absent meaning `default`.
pub(crate) fn config_bool(view: &VmConfigView, key: &str, default: bool) -> bool {
    match view.get(key) {
        Some("1" | "on" | "yes" | "true") => true,
        Some("0" | "off" | "no" | "false") => false,
        _ => default,
    }
}
