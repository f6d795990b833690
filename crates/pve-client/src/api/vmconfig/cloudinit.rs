//! The cloud-init settings: `ipconfigN`, the `sshkeys` encoding, and the checks that keep
//! `ciuser` and `cipassword` from changing the user-data YAML Proxmox writes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::err;
use crate::error::{PveError, Result};
use crate::propstring::{PropertyStringBuilder, check};

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
    pub(super) fn encode(&self, index: u8) -> Result<String> {
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

/// Decodes `sshkeys` as Proxmox returns it (percent-encoded, newline-separated) into one
/// trimmed key per entry; the inverse of [`encode_sshkeys`].
pub fn decode_sshkeys(encoded: &str) -> Vec<String> {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

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

/// A Linux user name as cloud-init creates it: `[a-z_][a-z0-9_-]*`, at most 32 characters.
pub(super) fn is_unix_user(u: &str) -> bool {
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
pub(super) fn check_cipassword(pw: &str) -> Result<()> {
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
