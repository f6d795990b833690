//! The decoded `GET /nodes/{node}/qemu/{vmid}/config`: every key as text, and typed readers of
//! the keys the controller looks at.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DiskSlot, DriveView, Nic, decode_sshkeys};
use crate::propstring::PropertyString;

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

    /// The drives by slot (`scsiN`, `virtioN`, `sataN`, `ideN`); a value that does not parse
    /// maps to `None` (the slot is still taken).
    pub fn drive_views(&self) -> BTreeMap<DiskSlot, Option<DriveView>> {
        self.values
            .iter()
            .filter_map(|(k, v)| Some((DiskSlot::parse(k).ok()?, DriveView::parse(v))))
            .collect()
    }

    /// The drives that parse: slot → (volume, size text), for disks and CD-ROMs.
    pub fn drives(&self) -> BTreeMap<DiskSlot, (String, Option<String>)> {
        self.drive_views()
            .into_iter()
            .filter_map(|(slot, d)| {
                let d = d?;
                let size = d.size_text().map(str::to_owned);
                Some((slot, (d.volume, size)))
            })
            .collect()
    }

    /// A `0`/`1` key (`onboot`, `template`, ...); `None` when absent or not a boolean.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        crate::de::bool_word(self.get(key)?)
    }

    /// The first value of the property string at `config_key`, written with or without its
    /// key (`cputype=host` / `host`, `enabled=1` / `1`, `type=q35` / `q35`).
    pub fn main_value(&self, config_key: &str, key: &str) -> Option<String> {
        let props = PropertyString::parse(self.get(config_key)?).ok()?;
        props
            .default_value()
            .or_else(|| props.get(key))
            .map(str::to_owned)
    }

    /// The SSH keys of `sshkeys` (percent-encoded, newline-separated), one trimmed key each.
    pub fn sshkeys(&self) -> Vec<String> {
        decode_sshkeys(self.get("sshkeys").unwrap_or_default())
    }
}
