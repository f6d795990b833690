//! PVE's named formats (`pve-node`, `pve-volume-id-or-qm-path`, ...) and the property-string
//! formats the schema names instead of inlining, written from PVE's format definitions.

use regex::Regex;
use serde_json::{Value, json};

fn re(p: &str) -> Regex {
    Regex::new(p).expect("test regex")
}

fn is_volid(s: &str) -> bool {
    re(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$").is_match(s)
}

/// Property-string formats that the schema names instead of inlining.
pub(super) fn named_propstring_format(name: &str) -> Option<Value> {
    let v = match name {
        "pve-qm-ipconfig" => json!({
            "ip": {"type": "string", "optional": 1, "format": "pve-ipv4-config"},
            "gw": {"type": "string", "optional": 1, "format": "ipv4"},
            "ip6": {"type": "string", "optional": 1, "format": "pve-ipv6-config"},
            "gw6": {"type": "string", "optional": 1, "format": "ipv6"},
        }),
        "pve-qm-boot" => json!({
            "legacy": {"type": "string", "optional": 1, "default_key": 1, "pattern": "[acdn]{1,4}"},
            "order": {"type": "string", "optional": 1, "format": "pve-qm-bootdev-list"},
        }),
        "pve-qm-smbios1" => json!({
            "uuid": {"type": "string", "optional": 1, "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}"},
            "base64": {"type": "boolean", "optional": 1},
            "family": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "manufacturer": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "product": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "serial": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "sku": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "version": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
        }),
        // qemu-server's `PVE::QemuServer::PCI` `$hostpci_fmt` (the schema's typetext lists the
        // keys; `driver` exists from 9.0 on and the client never sends it).
        "pve-qm-hostpci" => json!({
            "host": {"type": "string", "optional": 1, "default_key": 1, "pattern": "(?:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?;?)+"},
            "device-id": {"type": "string", "optional": 1, "pattern": "0x[0-9a-fA-F]{4}"},
            "legacy-igd": {"type": "boolean", "optional": 1},
            "mapping": {"type": "string", "optional": 1, "format": "pve-configid"},
            "mdev": {"type": "string", "optional": 1},
            "pcie": {"type": "boolean", "optional": 1},
            "rombar": {"type": "boolean", "optional": 1},
            "romfile": {"type": "string", "optional": 1},
            "sub-device-id": {"type": "string", "optional": 1, "pattern": "0x[0-9a-fA-F]{4}"},
            "sub-vendor-id": {"type": "string", "optional": 1, "pattern": "0x[0-9a-fA-F]{4}"},
            "vendor-id": {"type": "string", "optional": 1, "pattern": "0x[0-9a-fA-F]{4}"},
            "x-vga": {"type": "boolean", "optional": 1},
        }),
        "pve-vm-cpu-conf" => json!({
            "cputype": {"type": "string", "optional": 1, "default_key": 1, "pattern": "(?:custom-)?[a-zA-Z0-9_.\\-]+"},
            "flags": {"type": "string", "optional": 1, "pattern": "(?:[+-][a-zA-Z0-9\\-_.]+;?)*"},
            "hidden": {"type": "boolean", "optional": 1},
            "hv-vendor-id": {"type": "string", "optional": 1, "pattern": "[a-zA-Z0-9]{1,12}"},
            "phys-bits": {"type": "string", "optional": 1, "pattern": "(?:[0-9]+|host)"},
            "reported-model": {"type": "string", "optional": 1},
        }),
        _ => return None,
    };
    Some(v)
}

pub(super) fn check_named_format(format: &str, s: &str) -> Result<(), String> {
    let ok = match format {
        "pve-node" => re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$").is_match(s),
        "pve-storage-id" => re(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$").is_match(s),
        "pve-poolid" => re(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+){0,2}$").is_match(s),
        // `verify_username`: `[^\s:/]+@<realm>`, the realm `[A-Za-z][A-Za-z\d.\-_]+`, under 64.
        "pve-userid" => {
            s.len() < 64 && re(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$").is_match(s)
        }
        "dns-name" => {
            re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)*$").is_match(s)
        }
        "urlencoded" => re(r"^[-%a-zA-Z0-9_.!~*'()]*$").is_match(s),
        "pve-tag-list" => {
            let tag = re(r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$");
            let tags: Vec<&str> = s.split([';', ',', ' ']).filter(|t| !t.is_empty()).collect();
            !tags.is_empty() && tags.iter().all(|t| tag.is_match(t))
        }
        "address-list" => s
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .all(|a| a.parse::<std::net::IpAddr>().is_ok()),
        "mac-addr" => re(r"(?i)^[a-f0-9][02468ace](:[a-f0-9]{2}){5}$").is_match(s),
        "pve-bridge-id" => re(r"^[-_.\w\d]+$").is_match(s),
        "pve-volume-id-or-qm-path" => s == "none" || s == "cdrom" || s.starts_with('/') || is_volid(s),
        "pve-volume-id-or-absolute-path" => s.starts_with('/') || is_volid(s),
        "disk-size" => re(r"^\d+(\.\d+)?[KMGT]?$").is_match(s),
        "pve-configid" => re(r"^[a-z][a-z0-9_]+$").is_match(s),
        "pve-configid-list" => s.split(',').all(|k| re(r"^[a-z][a-z0-9_]+$").is_match(k)),
        "pve-storage-content" => re(r"^[a-z]+$").is_match(s),
        "pve-storage-content-list" => s.split(',').all(|k| re(r"^[a-z]+$").is_match(k)),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "pve-ipv4-config" => s == "dhcp" || cidr(s, false),
        "pve-ipv6-config" => s == "dhcp" || s == "auto" || cidr(s, true),
        "pve-qm-bootdev-list" => s
            .split(';')
            .all(|d| re(r"^(ide|sata|scsi|virtio|efidisk|tpmstate|net|hostpci|usb)\d+$").is_match(d)),
        other => return Err(format!("the test has no validator for format {other:?}; add one")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} does not match format {format}"))
    }
}

fn cidr(s: &str, v6: bool) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    if v6 {
        ip.parse::<std::net::Ipv6Addr>().is_ok() && prefix <= 128
    } else {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && prefix <= 32
    }
}
