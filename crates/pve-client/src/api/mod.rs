//! Typed endpoints. Each endpoint has a pure request builder in its module (validating every
//! input before anything is sent) and an `async fn` on [`crate::PveClient`].

pub mod access;
pub mod cluster;
pub mod download;
pub mod mapping;
pub mod nodes;
pub mod qemu;
pub mod storage_content;
pub mod tasks;
pub mod version;
pub mod vmconfig;

use crate::error::{PveError, Result};

/// The smallest VMID Proxmox accepts (`pve-vmid`).
pub const VMID_MIN: u32 = 100;
/// The largest VMID Proxmox accepts (`pve-vmid`).
pub const VMID_MAX: u32 = 999_999_999;

/// `Ok` when `ok`; otherwise [`PveError::InvalidInput`] on `field`, with the message `why` gives.
pub(crate) fn ensure(ok: bool, field: &str, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(PveError::invalid_input(field, why()))
    }
}

/// Checks a node name (`pve-node`: letters, digits and inner `-`).
pub fn validate_node(node: &str) -> Result<()> {
    let b = node.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    ensure(ok, "node", || {
        format!("{node:?} is not a node name (letters, digits and '-')")
    })
}

/// Checks a VMID (100 ..= 999999999).
pub fn validate_vmid(field: &str, vmid: u32) -> Result<()> {
    if (VMID_MIN..=VMID_MAX).contains(&vmid) {
        Ok(())
    } else {
        Err(PveError::invalid_input(
            field,
            format!("{vmid} is outside {VMID_MIN}..={VMID_MAX}"),
        ))
    }
}

/// Checks a storage ID (`pve-storage-id`).
pub fn validate_storage(field: &str, storage: &str) -> Result<()> {
    crate::propstring::check::storage_id(storage)
        .map_err(|m| PveError::invalid_input(field, format!("{storage:?} {m}")))
}

/// Checks a DNS name (`dns-name`): labels of letters, digits and inner `-`, joined by `.`.
pub fn validate_dns_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        });
    ensure(ok, field, || {
        format!("{name:?} is not a DNS name (letters, digits, inner '-', labels joined by '.')")
    })
}

/// Checks a pool id (`pve-poolid`: letters, digits, `-`, `_`; nested pools with `/`).
pub fn validate_pool(field: &str, pool: &str) -> Result<()> {
    let ok = !pool.is_empty()
        && pool.len() <= 64
        && pool.split('/').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    ensure(ok, field, || {
        format!("{pool:?} is not a pool id (letters, digits, '-', '_')")
    })
}

#[cfg(test)]
pub(crate) mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_accept_valid_and_refuse_invalid_inputs() {
        assert!(validate_node("pve").is_ok());
        assert!(validate_node("pve-node-2").is_ok());
        for bad in ["", "-pve", "pve-", "pve.example", "pve/../x", "p ve"] {
            assert!(validate_node(bad).is_err(), "{bad:?}");
        }
        assert!(validate_vmid("vmid", 100).is_ok());
        assert!(validate_vmid("vmid", 999_999_999).is_ok());
        assert!(validate_vmid("vmid", 99).is_err());
        assert!(validate_vmid("vmid", 1_000_000_000).is_err());
        assert!(validate_dns_name("name", "web-1.example.com").is_ok());
        assert!(validate_dns_name("name", "web_1").is_err());
        assert!(validate_dns_name("name", "web-").is_err());
        assert!(validate_pool("pool", "team-a").is_ok());
        assert!(validate_pool("pool", "team a").is_err());
        assert!(validate_storage("storage", "local-lvm").is_ok());
        assert!(validate_storage("storage", "local lvm").is_err());
    }
}

#[cfg(test)]
mod schema_conformance;
