//! A VM config run through the encoders once: what a create or an update sends, checked before
//! anything is recorded and sent as it was checked, without encoding it again.

use std::borrow::Cow;

use super::VmConfig;
use crate::api::validate_pool;
use crate::error::Result;
use crate::request::Params;

/// The parameters of a [`VmConfig`], encoded and validated ([`VmConfig::encode`]); the only way
/// to make one, so holding one means the encoders accepted it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedConfig {
    params: Params,
    pool: Option<String>,
}

impl EncodedConfig {
    /// No config key is set (the pool, a create-only parameter, does not count).
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The config keys set, in the order they are sent.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(k, _)| k)
    }

    /// The pool a create adds the VM to.
    pub fn pool(&self) -> Option<&str> {
        self.pool.as_deref()
    }

    /// The config parameters (without `vmid`, `pool`, `start`).
    pub(crate) fn params(&self) -> &Params {
        &self.params
    }
}

impl VmConfig {
    /// Runs this config through the encoders once: every value checked (nothing that would
    /// inject a property-string key, no value outside the schema) and the pool name validated.
    pub fn encode(&self) -> Result<EncodedConfig> {
        let params = self.to_params()?;
        if let Some(pool) = &self.pool {
            validate_pool("pool", pool)?;
        }
        Ok(EncodedConfig {
            params,
            pool: self.pool.clone(),
        })
    }
}

/// What the create and update calls take: a [`VmConfig`] (encoded by the call) or an
/// [`EncodedConfig`] (encoded before, sent as it is).
pub trait VmParams {
    /// The encoded config.
    fn encoded(&self) -> Result<Cow<'_, EncodedConfig>>;
}

impl VmParams for VmConfig {
    fn encoded(&self) -> Result<Cow<'_, EncodedConfig>> {
        self.encode().map(Cow::Owned)
    }
}

impl VmParams for EncodedConfig {
    fn encoded(&self) -> Result<Cow<'_, EncodedConfig>> {
        Ok(Cow::Borrowed(self))
    }
}
