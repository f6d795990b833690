//! The typed config update: what `POST|PUT /nodes/{node}/qemu/{vmid}/config` takes, kept apart
//! from the create (as proxmox-rs's `pve-api-types` keeps `UpdateQemuConfig` apart from the
//! create parameters) and checked when it is built, so that an update that exists can be sent.

use crate::api::vmconfig::{EncodedConfig, VmParams};
use crate::error::{PveError, Result};
use crate::request::Params;

/// A config update: the keys to set (encoded once, by the encoders a create uses), the keys to
/// delete and the pending changes to revert, and the `digest` the change was planned on.
///
/// Built with [`VmConfigUpdate::set`] (or `default()` for an update that only deletes) and the
/// `delete`, `revert` and `digest` steps, each of which refuses what Proxmox would: a pool (a
/// create-only parameter; membership changes through the pool API), a key that is not a config
/// key (nothing can be smuggled into the comma-separated lists), a key both set and deleted, a
/// digest that is not one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmConfigUpdate {
    set: EncodedConfig,
    delete: Vec<String>,
    revert: Vec<String>,
    digest: Option<String>,
}

impl VmConfigUpdate {
    /// An update that sets the keys of `config` (a `VmConfig`, encoded here, or an
    /// `EncodedConfig`, taken as it is). Fails when `config` names a pool.
    pub fn set(config: &impl VmParams) -> Result<Self> {
        let set = config.encoded()?.into_owned();
        if set.pool().is_some() {
            return Err(PveError::invalid_input(
                "pool",
                "the pool is set at create time; pool membership is changed with the pool API",
            ));
        }
        Ok(Self {
            set,
            ..Self::default()
        })
    }

    /// Also deletes `keys`. Fails on a key that is not a config key or that the update sets.
    pub fn delete<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> Result<Self> {
        for key in keys {
            let key = key.into();
            check_key("delete", &key)?;
            if self.set.keys().any(|k| k == key) {
                return Err(PveError::invalid_input(
                    "delete",
                    format!("{key:?} is both set and deleted"),
                ));
            }
            if !self.delete.contains(&key) {
                self.delete.push(key);
            }
        }
        Ok(self)
    }

    /// Also reverts the pending changes of `keys`. Fails on a key that is not a config key.
    pub fn revert<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> Result<Self> {
        for key in keys {
            let key = key.into();
            check_key("revert", &key)?;
            if !self.revert.contains(&key) {
                self.revert.push(key);
            }
        }
        Ok(self)
    }

    /// Applies only if the config's digest is still `digest` (read before): otherwise the call
    /// fails with [`PveError::DigestMismatch`]. Fails on a value that is not a digest.
    pub fn digest(mut self, digest: &str) -> Result<Self> {
        let ok = !digest.is_empty()
            && digest.len() <= 40
            && digest.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(PveError::invalid_input(
                "digest",
                format!("{digest:?} is not a config digest"),
            ));
        }
        self.digest = Some(digest.to_owned());
        Ok(self)
    }

    /// Nothing to set, delete or revert.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty() && self.revert.is_empty()
    }

    /// The keys deleted, in the order given.
    pub fn deleted(&self) -> &[String] {
        &self.delete
    }

    /// The form parameters, in the order they are sent: the keys to set, then `delete`,
    /// `revert` and `digest`.
    pub(crate) fn params(&self) -> Params {
        let mut p = self.set.params().clone();
        for (field, keys) in [("delete", &self.delete), ("revert", &self.revert)] {
            if !keys.is_empty() {
                p.str(field, keys.join(","));
            }
        }
        if let Some(d) = &self.digest {
            p.str("digest", d);
        }
        p
    }
}

/// Refuses anything but a config key (`net0`, `ide2`, `cores`, ...).
fn check_key(field: &str, key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(PveError::invalid_input(
            field,
            format!("{key:?} is not a config key"),
        ))
    }
}
