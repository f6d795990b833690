//! Proxmox property strings (`virtio=BC:24:11:2E:3F:40,bridge=vmbr0,tag=10`), encoded and decoded
//! in this one place.
//!
//! Encoding refuses, before any request is sent, every value that could inject another key or
//! another parameter: a value containing `,` `=` `;` a newline or any control character, or any
//! character that the key's format forbids, gives [`PveError::InvalidInput`] naming the field
//! (`net0.bridge`). Lists inside a value (`order=scsi0;ide2`, `trunks=10;20`) are joined by the
//! builder from individually checked items.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{PveError, Result};

/// A check of one value: `Ok(())` or the reason it is refused.
pub type Check = fn(&str) -> std::result::Result<(), String>;

/// Refuses what can never appear inside a property-string value.
fn structural(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, ',' | '=' | ';') || c.is_control())
    {
        return Err(format!(
            "must not contain {:?}: it would change the meaning of the property string",
            c
        ));
    }
    // `PropertyString::parse` trims each entry, so such a value would not read back as written.
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err("must not start or end with whitespace".into());
    }
    Ok(())
}

/// Builds one property string for the parameter `field` (`net0`, `scsi0`, `agent`, ...).
#[derive(Debug, Clone)]
pub struct PropertyStringBuilder {
    field: String,
    parts: Vec<String>,
}

impl PropertyStringBuilder {
    /// Starts a property string for the parameter `field`.
    pub fn new(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            parts: Vec::new(),
        }
    }

    fn check(&self, key: &str, value: &str, check: Check) -> Result<()> {
        structural(value).and_then(|()| check(value)).map_err(|m| {
            PveError::invalid_input(format!("{}.{}", self.field, key), format!("{value:?} {m}"))
        })
    }

    /// Adds the value of the default key, written without `key=` (e.g. the volume of a drive).
    /// `key` only names the field in errors.
    pub fn default_value(&mut self, key: &str, value: &str, check: Check) -> Result<&mut Self> {
        self.check(key, value, check)?;
        self.parts.push(value.to_owned());
        Ok(self)
    }

    /// Adds `key=value` after checking the value.
    pub fn push(&mut self, key: &str, value: &str, check: Check) -> Result<&mut Self> {
        self.check(key, value, check)?;
        self.parts.push(format!("{key}={value}"));
        Ok(self)
    }

    /// Adds `key=value` if `value` is `Some`.
    pub fn push_opt(&mut self, key: &str, value: Option<&str>, check: Check) -> Result<&mut Self> {
        match value {
            Some(v) => self.push(key, v, check),
            None => Ok(self),
        }
    }

    /// Adds `key=1` or `key=0`.
    pub fn push_bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.parts.push(format!("{key}={}", u8::from(value)));
        self
    }

    /// Adds `key=1`/`key=0` if `value` is `Some`.
    pub fn push_opt_bool(&mut self, key: &str, value: Option<bool>) -> &mut Self {
        if let Some(v) = value {
            self.push_bool(key, v);
        }
        self
    }

    /// Adds `key=<integer>`.
    pub fn push_uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.parts.push(format!("{key}={value}"));
        self
    }

    /// Adds `key=a;b;c` from items checked one by one.
    pub fn push_list<S: AsRef<str>>(
        &mut self,
        key: &str,
        items: &[S],
        check: Check,
    ) -> Result<&mut Self> {
        if items.is_empty() {
            return Err(PveError::invalid_input(
                format!("{}.{}", self.field, key),
                "the list must not be empty",
            ));
        }
        for item in items {
            self.check(key, item.as_ref(), check)?;
        }
        let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        self.parts.push(format!("{key}={}", joined.join(";")));
        Ok(self)
    }

    /// The encoded property string.
    pub fn build(&self) -> String {
        self.parts.join(",")
    }
}

/// A decoded property string: entries in order; the default-key value has no key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropertyString {
    entries: Vec<(Option<String>, String)>,
}

impl PropertyString {
    /// Splits `s` at `,` into `key=value` entries and at most one value without a key.
    pub fn parse(s: &str) -> Result<Self> {
        let mut entries: Vec<(Option<String>, String)> = Vec::new();
        let mut seen_default = false;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((k, v)) => {
                    if k.is_empty() {
                        return Err(PveError::invalid_input(
                            "property string",
                            format!("empty key in {s:?}"),
                        ));
                    }
                    if entries.iter().any(|(ek, _)| ek.as_deref() == Some(k)) {
                        return Err(PveError::invalid_input(
                            "property string",
                            format!("duplicate key {k:?} in {s:?}"),
                        ));
                    }
                    entries.push((Some(k.to_owned()), v.to_owned()));
                }
                None => {
                    if seen_default {
                        return Err(PveError::invalid_input(
                            "property string",
                            format!("more than one value without a key in {s:?}"),
                        ));
                    }
                    seen_default = true;
                    entries.push((None, part.to_owned()));
                }
            }
        }
        Ok(Self { entries })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_deref() == Some(key))
            .map(|(_, v)| v.as_str())
    }

    /// The value written without a key.
    pub fn default_value(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.is_none())
            .map(|(_, v)| v.as_str())
    }

    /// All entries in order.
    pub fn entries(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_deref(), v.as_str()))
    }

    /// The value of a `0`/`1` key.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        crate::de::bool_word(self.get(key)?)
    }

    /// The value of an integer key.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }
}

/// Value checks for the formats of the PVE schema.
pub mod check {
    use super::*;

    /// Any value that passes the structural checks only.
    pub fn any(_: &str) -> std::result::Result<(), String> {
        Ok(())
    }

    /// A word of letters, digits, `_`, `-`, `.` and `+` (enum values, CPU types, models).
    pub fn word(v: &str) -> std::result::Result<(), String> {
        if v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
        {
            Ok(())
        } else {
            Err("may only contain letters, digits, '_', '-', '.' and '+'".into())
        }
    }

    /// A MAC address `XX:XX:XX:XX:XX:XX` (unicast).
    pub fn mac(v: &str) -> std::result::Result<(), String> {
        let parts: Vec<&str> = v.split(':').collect();
        let ok = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err("is not a MAC address of the form XX:XX:XX:XX:XX:XX".into());
        }
        match u8::from_str_radix(parts[0], 16) {
            Ok(first) if first & 1 == 0 => Ok(()),
            _ => Err("is a multicast MAC address".into()),
        }
    }

    /// A bridge name (`pve-bridge-id`: letters, digits, `-`, `_`, `.`; at most 15 characters).
    pub fn bridge(v: &str) -> std::result::Result<(), String> {
        if v.len() <= 15
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            Ok(())
        } else {
            Err(
                "is not a bridge name (letters, digits, '-', '_', '.'; at most 15 characters)"
                    .into(),
            )
        }
    }

    /// A storage ID (`pve-storage-id`: `[a-z][a-z0-9\-_.]*[a-z0-9]`).
    pub fn storage_id(v: &str) -> std::result::Result<(), String> {
        let b = v.as_bytes();
        let ok = b.len() >= 2
            && b[0].is_ascii_alphabetic()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err("is not a storage ID (a letter, then letters, digits, '-', '_', '.', ending with a letter or digit)".into())
        }
    }

    /// A volume ID `storage:volume` (`local:iso/debian.iso`, `local-lvm:vm-100-disk-0`).
    pub fn volume_id(v: &str) -> std::result::Result<(), String> {
        let Some((storage, volume)) = v.split_once(':') else {
            return Err("is not a volume ID of the form STORAGE:VOLUME".into());
        };
        storage_id(storage)?;
        let ok = !volume.is_empty()
            && !volume.contains("..")
            && volume.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '@' | ':')
            });
        if ok {
            Ok(())
        } else {
            Err("has a volume name with '..' or with characters outside letters, digits, '-', '_', '.', '/', '+', '@', ':'".into())
        }
    }

    /// A disk size `<number>[KMGT]` (`32G`, `+10G` is not allowed here).
    pub fn size(v: &str) -> std::result::Result<(), String> {
        let digits = v.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(v);
        let mut parts = digits.splitn(2, '.');
        let int = parts.next().unwrap_or_default();
        let frac = parts.next();
        let ok = !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()));
        if ok {
            Ok(())
        } else {
            Err("is not a size like 32G, 512M or 1.5T".into())
        }
    }

    /// `address/prefix` with an address of type `A` (of `family`, shaped like `example`) and a
    /// prefix length of at most `max`.
    fn cidr<A: std::str::FromStr>(
        v: &str,
        family: &str,
        example: &str,
        max: u8,
    ) -> std::result::Result<(), String> {
        let not_cidr = || format!("is not an {family} CIDR like {example}");
        let (ip, prefix) = v.split_once('/').ok_or_else(not_cidr)?;
        ip.parse::<A>().map_err(|_| not_cidr())?;
        match prefix.parse::<u8>() {
            Ok(p) if p <= max => Ok(()),
            _ => Err(format!("has an {family} prefix length outside 0..={max}")),
        }
    }

    /// An IPv4 address in CIDR notation.
    pub fn ipv4_cidr(v: &str) -> std::result::Result<(), String> {
        cidr::<Ipv4Addr>(v, "IPv4", "192.0.2.10/24", 32)
    }

    /// An IPv6 address in CIDR notation.
    pub fn ipv6_cidr(v: &str) -> std::result::Result<(), String> {
        cidr::<Ipv6Addr>(v, "IPv6", "2001:db8::10/64", 128)
    }

    /// An IPv4 address.
    pub fn ipv4(v: &str) -> std::result::Result<(), String> {
        v.parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| "is not an IPv4 address".into())
    }

    /// An IPv6 address.
    pub fn ipv6(v: &str) -> std::result::Result<(), String> {
        v.parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "is not an IPv6 address".into())
    }

    /// An IPv4 or IPv6 address.
    pub fn ip(v: &str) -> std::result::Result<(), String> {
        v.parse::<IpAddr>()
            .map(|_| ())
            .map_err(|_| "is not an IP address".into())
    }

    /// A UUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn uuid(v: &str) -> std::result::Result<(), String> {
        let groups: Vec<&str> = v.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip(lens)
                .all(|(g, l)| g.len() == l && g.chars().all(|c| c.is_ascii_hexdigit()));
        if ok {
            Ok(())
        } else {
            Err("is not a UUID like 01234567-89ab-cdef-0123-456789abcdef".into())
        }
    }

    /// A boot device name (`scsi0`, `virtio1`, `sata2`, `ide2`, `efidisk0`, `net0`, `hostpci0`, `usb0`).
    pub fn boot_device(v: &str) -> std::result::Result<(), String> {
        let prefix = v.trim_end_matches(|c: char| c.is_ascii_digit());
        let ok = prefix.len() < v.len()
            && matches!(
                prefix,
                "scsi" | "virtio" | "sata" | "ide" | "efidisk" | "net" | "hostpci" | "usb"
            );
        if ok {
            Ok(())
        } else {
            Err("is not a boot device such as scsi0, virtio0, sata0, ide2 or net0".into())
        }
    }

    /// A VLAN id 1..=4094.
    pub fn vlan(v: &str) -> std::result::Result<(), String> {
        match v.parse::<u16>() {
            Ok(t) if (1..=4094).contains(&t) => Ok(()),
            _ => Err("is not a VLAN id in 1..=4094".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(bridge: &str, mac: &str) -> Result<String> {
        let mut b = PropertyStringBuilder::new("net0");
        b.push("virtio", mac, check::mac)?
            .push("bridge", bridge, check::bridge)?
            .push_uint("tag", 10)
            .push_bool("firewall", true);
        Ok(b.build())
    }

    #[test]
    fn encodes_a_nic_in_proxmox_form() {
        assert_eq!(
            nic("vmbr0", "BC:24:11:2E:3F:40").unwrap(),
            "virtio=BC:24:11:2E:3F:40,bridge=vmbr0,tag=10,firewall=1"
        );
    }

    #[test]
    fn round_trips_through_parse() {
        let s = nic("vmbr0", "BC:24:11:2E:3F:40").unwrap();
        let p = PropertyString::parse(&s).unwrap();
        assert_eq!(p.get("virtio"), Some("BC:24:11:2E:3F:40"));
        assert_eq!(p.get("bridge"), Some("vmbr0"));
        assert_eq!(p.get_u64("tag"), Some(10));
        assert_eq!(p.get_bool("firewall"), Some(true));
        let rebuilt: Vec<String> = p
            .entries()
            .map(|(k, v)| match k {
                Some(k) => format!("{k}={v}"),
                None => v.to_owned(),
            })
            .collect();
        assert_eq!(rebuilt.join(","), s);

        let disk = "local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G,ssd=1";
        let p = PropertyString::parse(disk).unwrap();
        assert_eq!(p.default_value(), Some("local-lvm:vm-100-disk-0"));
        assert_eq!(p.get("size"), Some("32G"));
        assert_eq!(p.get_bool("discard"), Some(true));
    }

    #[test]
    fn injection_attempts_are_refused_naming_the_field() {
        for evil in [
            "vmbr0,tag=99",
            "vmbr0;vmbr1",
            "vmbr0=x",
            "vmbr0\nnet1=virtio",
            "vmbr0\r",
            "vmbr0\0",
            "",
            "vmbr 0",
            "vmbr0&net1=e1000",
            "a-very-long-bridge-name",
        ] {
            match nic(evil, "BC:24:11:2E:3F:40") {
                Err(PveError::InvalidInput { field, message }) => {
                    assert_eq!(field, "net0.bridge", "{evil:?}");
                    assert!(!message.is_empty());
                }
                other => panic!("{evil:?} was accepted: {other:?}"),
            }
        }
        for evil_mac in [
            "BC:24:11:2E:3F:40,bridge=vmbr9",
            "BC:24:11:2E:3F",
            "01:24:11:2E:3F:40",
            "ZZ:24:11:2E:3F:40",
        ] {
            match nic("vmbr0", evil_mac) {
                Err(PveError::InvalidInput { field, .. }) => assert_eq!(field, "net0.virtio"),
                other => panic!("{evil_mac:?} was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn values_with_outer_whitespace_are_refused_as_they_would_not_read_back() {
        // Found by the propstring_roundtrip fuzz target: `k=x ` was built and parsed back as `x`.
        for v in ["x ", " x", "x\u{2028}", "\u{a0}x", " "] {
            let mut b = PropertyStringBuilder::new("net0");
            assert!(
                matches!(b.push("k", v, check::any), Err(PveError::InvalidInput { field, .. }) if field == "net0.k"),
                "{v:?}"
            );
            assert!(b.default_value("file", v, check::any).is_err(), "{v:?}");
            assert!(b.push_list("order", &[v], check::any).is_err(), "{v:?}");
        }
        let mut b = PropertyStringBuilder::new("net0");
        b.push("k", "a b", check::any).unwrap();
        let built = b.build();
        assert_eq!(PropertyString::parse(&built).unwrap().get("k"), Some("a b"));
    }

    #[test]
    fn list_items_cannot_smuggle_separators() {
        let mut b = PropertyStringBuilder::new("boot");
        b.push_list("order", &["scsi0", "ide2", "net0"], check::boot_device)
            .unwrap();
        assert_eq!(b.build(), "order=scsi0;ide2;net0");
        let mut b = PropertyStringBuilder::new("boot");
        assert!(matches!(
            b.push_list("order", &["scsi0;net0"], check::boot_device),
            Err(PveError::InvalidInput { field, .. }) if field == "boot.order"
        ));
        assert!(
            b.push_list("order", &["floppy0"], check::boot_device)
                .is_err()
        );
        assert!(
            b.push_list::<&str>("order", &[], check::boot_device)
                .is_err()
        );
    }

    #[test]
    fn format_checks_accept_valid_and_refuse_invalid_values() {
        assert!(check::volume_id("local:iso/debian-12.iso").is_ok());
        assert!(check::volume_id("local-lvm:vm-100-disk-0").is_ok());
        assert!(check::volume_id("local:../../etc/passwd").is_err());
        assert!(check::volume_id("noscolon").is_err());
        assert!(check::storage_id("local-lvm").is_ok());
        assert!(check::storage_id("Local").is_ok());
        assert!(check::storage_id("1local").is_err());
        assert!(check::size("32G").is_ok());
        assert!(check::size("1.5T").is_ok());
        assert!(check::size("1024").is_ok());
        assert!(check::size("+10G").is_err());
        assert!(check::size("10X").is_err());
        assert!(check::size("1.G").is_err());
        assert!(check::ipv4_cidr("192.0.2.10/24").is_ok());
        assert!(check::ipv4_cidr("192.0.2.10/33").is_err());
        assert!(check::ipv4_cidr("192.0.2.10").is_err());
        assert!(check::ipv6_cidr("2001:db8::1/64").is_ok());
        assert!(check::uuid("01234567-89ab-cdef-0123-456789abcdef").is_ok());
        assert!(check::uuid("01234567-89ab-cdef-0123-456789abcdeg").is_err());
        assert!(check::vlan("4094").is_ok());
        assert!(check::vlan("0").is_err());
        assert!(check::vlan("4095").is_err());
    }

    #[test]
    fn parse_refuses_ambiguous_strings() {
        assert!(PropertyString::parse("a=1,a=2").is_err());
        assert!(PropertyString::parse("x,y").is_err());
        assert!(PropertyString::parse("=1").is_err());
        assert_eq!(
            PropertyString::parse("").unwrap(),
            PropertyString::default()
        );
    }
}
