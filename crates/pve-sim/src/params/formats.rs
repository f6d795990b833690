//! Named PVE formats (`pve-vmid`, `dns-name`, `pve-tag-list`, ...). Formats not listed here are
//! accepted as they are.

use std::sync::LazyLock;

use regex::Regex;

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pat).expect("static regex"));
    };
}

re!(VMID, r"^[1-9][0-9]+$");
re!(NODE, r"(?i)^[a-z0-9]([a-z0-9\-]*[a-z0-9])?$");
re!(STORAGE_ID, r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$");
re!(
    DNS_NAME,
    r"^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
);
re!(CONFIGID, r"(?i)^[a-z][a-z0-9_\-]+$");
re!(TAG, r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$");
re!(MAC, r"(?i)^[a-f0-9][02468ace](:[a-f0-9]{2}){5}$");
re!(BRIDGE, r"^[\-_.\w]+$");
re!(POOLID, r"^[A-Za-z0-9.\-_]+$");
re!(URLENCODED, r"^[\-%a-zA-Z0-9_.!~*'()]*$");
re!(DISK_SIZE, r"^\d+(\.\d+)?[KMGT]?$");
re!(REALM, r"^[A-Za-z][A-Za-z0-9.\-_]+$");
re!(USERID, r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$");
re!(VOLUME_ID, r"^[^:\s]+:[^\s]*$");
re!(BOOTDISK, r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$");
re!(STARTUP, r"^(order=\d+)?(,?(up|down)=\d+)*$");

/// Splits a PVE list (`split_list`: separators `,`, `;`, whitespace and NUL).
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace() || c == '\0')
        .filter(|s| !s.is_empty())
}

/// Checks `text` against the named format; the error is PVE's text without `invalid format - `.
pub fn check(format: &str, text: &str) -> Result<(), String> {
    let ok = |cond: bool, msg: &str| if cond { Ok(()) } else { Err(msg.to_string()) };
    match format {
        "pve-vmid" => ok(
            VMID.is_match(text),
            "value does not look like a valid VM ID",
        ),
        "pve-node" => ok(
            NODE.is_match(text),
            "value does not look like a valid node name",
        ),
        "pve-storage-id" => ok(
            STORAGE_ID.is_match(text),
            &format!("storage ID '{text}' contains illegal characters"),
        ),
        "dns-name" => ok(
            DNS_NAME.is_match(text),
            "value does not look like a valid DNS name",
        ),
        "pve-configid" => ok(
            CONFIGID.is_match(text),
            &format!("invalid configuration ID '{text}'"),
        ),
        "pve-configid-list" => {
            for id in split_list(text) {
                ok(
                    CONFIGID.is_match(id),
                    &format!("invalid configuration ID '{id}'"),
                )?;
            }
            Ok(())
        }
        "pve-tag-list" => {
            for tag in split_list(text) {
                ok(TAG.is_match(tag), &format!("invalid tag '{tag}'"))?;
            }
            Ok(())
        }
        "mac-addr" => ok(
            MAC.is_match(text),
            "value does not look like a valid unicast MAC address",
        ),
        "pve-bridge-id" => ok(
            BRIDGE.is_match(text),
            &format!("invalid bridge ID '{text}'"),
        ),
        "pve-poolid" => ok(POOLID.is_match(text), &format!("invalid pool ID '{text}'")),
        "urlencoded" => ok(
            URLENCODED.is_match(text),
            &format!("invalid urlencoded string: {text}"),
        ),
        "disk-size" => ok(
            DISK_SIZE.is_match(text),
            &format!("unable to parse size '{text}'"),
        ),
        "pve-realm" => ok(
            REALM.is_match(text),
            &format!("realm '{text}' contains illegal characters"),
        ),
        "pve-userid" => ok(
            USERID.is_match(text) && text.len() <= 64,
            "value does not look like a valid user name",
        ),
        "pve-vmid-list" => {
            for id in split_list(text) {
                ok(
                    VMID.is_match(id),
                    &format!("value '{id}' does not look like a valid VM ID"),
                )?;
            }
            Ok(())
        }
        "pve-storage-id-list" => {
            for id in split_list(text) {
                ok(
                    STORAGE_ID.is_match(id),
                    &format!("storage ID '{id}' contains illegal characters"),
                )?;
            }
            Ok(())
        }
        "CIDR" => ok(
            is_cidr(text),
            "value does not look like a valid CIDR network",
        ),
        "address-list" => {
            for a in split_list(text) {
                ok(
                    a.parse::<std::net::IpAddr>().is_ok(),
                    &format!("value '{a}' does not look like a valid IP address"),
                )?;
            }
            Ok(())
        }
        "pve-qm-bootdisk" => ok(
            BOOTDISK.is_match(text),
            &format!("invalid drive name '{text}'"),
        ),
        "pve-startup-order" => ok(STARTUP.is_match(text), "unable to parse startup options"),
        "pve-volume-id" => ok(
            VOLUME_ID.is_match(text),
            &format!("unable to parse volume ID '{text}'"),
        ),
        _ => Ok(()),
    }
}

/// `address/prefix` with an IPv4 (prefix <= 32) or IPv6 (prefix <= 128) address.
fn is_cidr(text: &str) -> bool {
    let Some((addr, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_tag_formats() {
        assert!(check("pve-node", "pve-1").is_ok());
        assert!(check("pve-node", "-bad").is_err());
        assert!(check("pve-tag-list", "web;prod,k8s").is_ok());
        assert!(check("pve-tag-list", "web;pr od!").is_err());
        assert!(check("mac-addr", "BC:24:11:00:00:01").is_ok());
        assert!(check("mac-addr", "BD:24:11:00:00:01").is_err());
        assert!(check("pve-vmid-list", "100,101;102").is_ok());
        assert!(check("pve-vmid-list", "100,abc").is_err());
        assert!(check("CIDR", "10.0.0.0/8").is_ok() && check("CIDR", "10.0.0.0/33").is_err());
        assert!(check("address-list", "1.1.1.1 2606:4700::1111").is_ok());
        assert!(check("address-list", "1.1.1.999").is_err());
        assert!(
            check("pve-qm-bootdisk", "scsi0").is_ok() && check("pve-qm-bootdisk", "net0").is_err()
        );
        assert!(check("pve-startup-order", "order=1,up=30").is_ok());
    }
}
