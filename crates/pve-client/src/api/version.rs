//! `GET /version`.

use serde::Deserialize;

use crate::client::PveClient;
use crate::error::Result;
use crate::request::{ApiRequest, Method, Params};

/// The Proxmox VE version of the node that answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// The full pve-manager version (`8.4.1`).
    pub version: String,
    /// The point release (`8.4`).
    pub release: String,
    /// The git revision.
    pub repoid: String,
    /// The default console, if set in datacenter.cfg.
    #[serde(default)]
    pub console: Option<String>,
}

impl Version {
    /// `(major, minor)` from `release` (or `version`), if it parses.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        let src = if self.release.is_empty() {
            &self.version
        } else {
            &self.release
        };
        let mut it = src.split(['.', '-']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    }
}

/// `GET /version`.
pub fn version_request() -> ApiRequest {
    ApiRequest::new(Method::Get, "/version", &[], Params::new())
}

impl PveClient {
    /// `GET /version`: also a cheap credentials check.
    pub async fn version(&self) -> Result<Version> {
        self.call(&version_request()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_version_responses_decode() {
        let v: Version = serde_json::from_str(
            r#"{"version":"8.4.1","release":"8.4","repoid":"0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(v.major_minor(), Some((8, 4)));
        let v: Version =
            serde_json::from_str(r#"{"repoid":"39d8a4de7dfb2c40","release":"9.0","version":"9.0.4","console":"xtermjs"}"#).unwrap();
        assert_eq!(v.major_minor(), Some((9, 0)));
        assert_eq!(v.console.as_deref(), Some("xtermjs"));
    }
}
