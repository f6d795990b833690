//! `GET /access/permissions`: the caller's effective privileges.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};

/// Effective privileges: ACL path → privilege → propagate flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Permissions(pub BTreeMap<String, BTreeMap<String, PropagateFlag>>);

/// The propagate flag of a privilege (Proxmox sends `1`/`0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PropagateFlag(#[serde(deserialize_with = "crate::de::bool")] pub bool);

impl Permissions {
    /// Whether `privilege` is held exactly on `path` (as listed by Proxmox).
    pub fn has(&self, path: &str, privilege: &str) -> bool {
        self.0.get(path).is_some_and(|p| p.contains_key(privilege))
    }

    /// The privileges listed on `path`.
    pub fn privileges_on(&self, path: &str) -> Vec<&str> {
        self.0
            .get(path)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// `GET /access/permissions[?path=..&userid=..]`.
pub fn permissions_request(path: Option<&str>, userid: Option<&str>) -> Result<ApiRequest> {
    let mut p = Params::new();
    if let Some(path) = path {
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PveError::invalid_input(
                "path",
                format!("{path:?} is not an ACL path like /vms/100"),
            ));
        }
        p.str("path", path);
    }
    if let Some(u) = userid {
        let ok = u.split_once('@').is_some_and(|(user, rest)| {
            !user.is_empty()
                && !user.contains(char::is_whitespace)
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '!'))
        });
        if !ok {
            return Err(PveError::invalid_input(
                "userid",
                format!("{u:?} is not USER@REALM[!TOKEN]"),
            ));
        }
        p.str("userid", u);
    }
    Ok(ApiRequest::new(Method::Get, "/access/permissions", &[], p))
}

impl PveClient {
    /// `GET /access/permissions`: the effective privileges of the caller (or of `userid`), on
    /// every relevant path or only on `path`.
    pub async fn permissions(
        &self,
        path: Option<&str>,
        userid: Option<&str>,
    ) -> Result<Permissions> {
        self.call(&permissions_request(path, userid)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_decode_with_integer_flags() {
        let p: Permissions = serde_json::from_str(
            r#"{"/":{"Sys.Audit":1},"/vms":{"VM.Allocate":1,"VM.Audit":0},"/storage/local":{}}"#,
        )
        .unwrap();
        assert!(p.has("/vms", "VM.Allocate"));
        assert!(p.has("/vms", "VM.Audit"));
        assert!(!p.has("/vms/100", "VM.Allocate"));
        assert_eq!(p.privileges_on("/vms"), ["VM.Allocate", "VM.Audit"]);
        assert!(p.privileges_on("/storage/local").is_empty());
        assert!(permissions_request(Some("vms"), None).is_err());
        assert!(permissions_request(None, Some("omni@pve!tok")).is_ok());
    }
}
