//! A drive as `GET .../config` returns it: Proxmox rewrites what it was sent to
//! `storage:vm-<id>-disk-<n>,<options sorted>,size=32G` (or a path on a dir storage), CD-ROMs
//! carry `media=cdrom`, the cloud-init drive is `…-cloudinit`.

use crate::propstring::PropertyString;

/// A size as Proxmox writes it (`32G`, `512M`, `4M`, `1T`, `2.5G`, or plain bytes) in bytes.
pub fn parse_size_bytes(text: &str) -> Option<u64> {
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

/// A drive (`scsi0`, `ide2`, `efidisk0`, ...) as Proxmox stores it, with Proxmox's defaults for
/// the options it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveView {
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

    /// The TPM interface version of a `tpmstate0` drive; absent is Proxmox's default, `v1.2`.
    pub fn tpm_version(&self) -> &str {
        self.props.get("version").unwrap_or("v1.2")
    }

    /// The cache mode; absent is Proxmox's default, `none`.
    pub fn cache(&self) -> &str {
        self.props.get("cache").unwrap_or("none")
    }
}
