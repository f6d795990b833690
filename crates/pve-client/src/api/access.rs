//! Access control: `GET /access/permissions` (the caller's effective privileges), and the
//! reads of a user and of one of its API tokens (`GET /access/users/{userid}` and
//! `GET /access/users/{userid}/token/{tokenid}`), e.g. to learn a token's privilege separation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ensure;
use crate::client::PveClient;
use crate::de;
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

/// The settings of an API token: the answer of `GET /access/users/{userid}/token/{tokenid}`,
/// and each entry of [`UserInfo::tokens`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenInfo {
    /// Privilege separation: `Some(true)`, the token holds only what its own ACLs grant (and its
    /// user holds too); `Some(false)`, it holds every privilege of its user; `None`, not said
    /// (Proxmox then applies its default, separated).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub privsep: Option<bool>,
    /// When the token expires, in seconds since the epoch (`0`: never; absent: as its user).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub expire: Option<u64>,
    /// The token's comment.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub comment: Option<String>,
}

/// A user: the answer of `GET /access/users/{userid}` (the fields read here; the rest is
/// ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// Whether the account is enabled (absent: Proxmox's default, enabled).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enable: Option<bool>,
    /// When the account expires, in seconds since the epoch (`0`: never).
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub expire: Option<u64>,
    /// The user's comment.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub comment: Option<String>,
    /// The user's API tokens by name (the part after `!`).
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenInfo>,
}

/// Whether `s` is a Proxmox realm or token name: a letter, then letters, digits, `.`, `-` or
/// `_`, at least two characters (`pve-realm`, and the `tokenid` pattern).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Checks a user id (`pve-userid`: `USER@REALM`, no token part).
fn validate_userid(userid: &str) -> Result<()> {
    let ok = userid.split_once('@').is_some_and(|(user, realm)| {
        !user.is_empty()
            && !user
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '/' | '!'))
            && is_name(realm)
    });
    ensure(ok, "userid", || format!("{userid:?} is not USER@REALM"))
}

/// Checks a token name (the part of a token id after `!`).
fn validate_tokenid(tokenid: &str) -> Result<()> {
    if is_name(tokenid) {
        Ok(())
    } else {
        Err(PveError::invalid_input(
            "tokenid",
            format!(
                "{tokenid:?} is not a token name (a letter, then letters, digits, '.', '-' or '_')"
            ),
        ))
    }
}

/// `GET /access/users/{userid}`.
pub fn user_request(userid: &str) -> Result<ApiRequest> {
    validate_userid(userid)?;
    Ok(ApiRequest::new(
        Method::Get,
        "/access/users/{userid}",
        &[("userid", userid)],
        Params::new(),
    ))
}

/// `GET /access/users/{userid}/token/{tokenid}`.
pub fn user_token_request(userid: &str, tokenid: &str) -> Result<ApiRequest> {
    validate_userid(userid)?;
    validate_tokenid(tokenid)?;
    Ok(ApiRequest::new(
        Method::Get,
        "/access/users/{userid}/token/{tokenid}",
        &[("userid", userid), ("tokenid", tokenid)],
        Params::new(),
    ))
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

    /// `GET /access/users/{userid}`: the user, with its API tokens. Proxmox answers only with
    /// `User.Modify` or `Sys.Audit` on the user's groups (`/access/groups`); it refuses otherwise
    /// (403), even the user's own tokens.
    pub async fn user(&self, userid: &str) -> Result<UserInfo> {
        self.call(&user_request(userid)?).await
    }

    /// `GET /access/users/{userid}/token/{tokenid}`: one API token's settings. Proxmox answers a
    /// token about itself only with `User.Modify` on its user's groups (`/access/groups`); it
    /// refuses otherwise (403).
    pub async fn user_token(&self, userid: &str, tokenid: &str) -> Result<TokenInfo> {
        self.call(&user_token_request(userid, tokenid)?).await
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

    #[test]
    fn token_settings_decode_with_booleans_in_every_spelling() {
        for (privsep, want) in [
            ("1", Some(true)),
            ("0", Some(false)),
            ("\"1\"", Some(true)),
            ("\"0\"", Some(false)),
            ("true", Some(true)),
            ("false", Some(false)),
            ("null", None),
        ] {
            let info: TokenInfo = serde_json::from_str(&format!(
                r#"{{"privsep":{privsep},"expire":0,"comment":"ci"}}"#
            ))
            .unwrap();
            assert_eq!(info.privsep, want, "privsep {privsep}");
            assert_eq!(info.expire, Some(0));
            assert_eq!(info.comment.as_deref(), Some("ci"));
        }
        let bare: TokenInfo = serde_json::from_str("{}").unwrap();
        assert_eq!(bare, TokenInfo::default(), "every field is optional");
        let expire: TokenInfo = serde_json::from_str(r#"{"expire":"1700000000"}"#).unwrap();
        assert_eq!(expire.expire, Some(1_700_000_000));
        assert!(serde_json::from_str::<TokenInfo>(r#"{"privsep":"maybe"}"#).is_err());
    }

    #[test]
    fn a_user_decodes_with_its_tokens_by_name() {
        let user: UserInfo = serde_json::from_str(
            r#"{"enable":1,"expire":0,"email":"op@example.com","groups":["ops"],
                "tokens":{"ctl":{"privsep":1,"expire":0},"ci":{"privsep":"0","comment":"build"}}}"#,
        )
        .unwrap();
        assert_eq!(user.enable, Some(true));
        assert_eq!(user.tokens["ctl"].privsep, Some(true));
        assert_eq!(user.tokens["ci"].privsep, Some(false));
        assert_eq!(user.tokens["ci"].comment.as_deref(), Some("build"));
        let without: UserInfo = serde_json::from_str(r#"{"enable":1}"#).unwrap();
        assert!(without.tokens.is_empty(), "no tokens key: no tokens");
    }

    #[test]
    fn user_and_token_requests_encode_their_path_and_refuse_what_is_no_id() {
        let req = user_token_request("op@pve", "ctl").unwrap();
        assert_eq!(req.path, "/access/users/op@pve/token/ctl");
        assert_eq!(req.describe(), "GET /access/users/{userid}/token/{tokenid}");
        let refused = user_request("first last@pve").unwrap_err();
        assert_eq!(refused.kind(), crate::ErrorKind::InvalidInput);
        let req = user_request("op@pve").unwrap();
        assert_eq!(req.path, "/access/users/op@pve");
        for bad in [
            "op",
            "op@",
            "@pve",
            "op@pve!ctl",
            "op/..@pve",
            "op@p ve",
            "op@9pve",
        ] {
            assert!(user_request(bad).is_err(), "{bad:?}");
            assert!(user_token_request(bad, "ctl").is_err(), "{bad:?}");
        }
        for bad in ["", "c", "1ctl", "ctl/x", "..", "ctl tok"] {
            assert!(user_token_request("op@pve", bad).is_err(), "{bad:?}");
        }
    }
}
