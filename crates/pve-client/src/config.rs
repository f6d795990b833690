//! The Proxmox connection settings, in exactly the format of the source documents:
//!
//! ```yaml
//! proxmox:
//!   url: "https://<proxmox-node>:8006/api2/json"
//!   insecureSkipVerify: true
//!   tokenID: "omni@pve!omni-provider"
//!   tokenSecret: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
//!   # or username / password / realm (ticket auth)
//! ```
//!
//! Added keys: `caBundle` (PEM text of the CA(s) to trust instead of the public roots),
//! `caBundleFile` (a path to such a PEM file) and `fingerprint` (the SHA-256 fingerprint of the
//! node certificate in the colon-separated hex form Proxmox shows, pinned instead of CA checks).
//!
//! Environment variables supply or override every key (an empty variable counts as unset):
//!
//! | key | variable |
//! |---|---|
//! | `url` | `PVE_URL` |
//! | `insecureSkipVerify` | `PVE_INSECURE_SKIP_VERIFY` (`true`/`false`/`1`/`0`/`yes`/`no`) |
//! | `tokenID` | `PVE_TOKEN_ID` |
//! | `tokenSecret` | `PVE_TOKEN_SECRET` |
//! | `username` | `PVE_USERNAME` |
//! | `password` | `PVE_PASSWORD` |
//! | `realm` | `PVE_REALM` |
//! | `caBundle` | `PVE_CA_BUNDLE` |
//! | `caBundleFile` | `PVE_CA_BUNDLE_FILE` |
//! | `fingerprint` | `PVE_FINGERPRINT` |
//!
//! This module reads the section, applies the environment and validates the result; beside it
//! live the parser messages without document text (`yaml_errors`), the URL normalisation
//! (`url`), the credentials (`credentials`) and the certificate trust (`trust`).

use std::path::Path;

use serde::Deserialize;

use crate::error::{PveError, Result};
use crate::secret::Secret;

mod credentials;
mod trust;
mod url;
mod yaml_errors;

pub use credentials::{ApiToken, Credentials};
pub use trust::{Fingerprint, TlsTrust};

use credentials::resolve_credentials;
use url::normalize_url;
use yaml_errors::{parse_error, without_document_text};

/// The keys of the `proxmox:` section and the environment variable of each.
pub const ENV_VARS: [(&str, &str); 10] = [
    ("url", "PVE_URL"),
    ("insecureSkipVerify", "PVE_INSECURE_SKIP_VERIFY"),
    ("tokenID", "PVE_TOKEN_ID"),
    ("tokenSecret", "PVE_TOKEN_SECRET"),
    ("username", "PVE_USERNAME"),
    ("password", "PVE_PASSWORD"),
    ("realm", "PVE_REALM"),
    ("caBundle", "PVE_CA_BUNDLE"),
    ("caBundleFile", "PVE_CA_BUNDLE_FILE"),
    ("fingerprint", "PVE_FINGERPRINT"),
];

/// The `proxmox:` section as written, before validation. Every field is optional here so that
/// environment variables can supply it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxmoxConfig {
    /// `url`.
    #[serde(default)]
    pub url: Option<String>,
    /// `insecureSkipVerify`.
    #[serde(
        rename = "insecureSkipVerify",
        default,
        deserialize_with = "crate::de::opt_bool"
    )]
    pub insecure_skip_verify: Option<bool>,
    /// `tokenID`.
    #[serde(rename = "tokenID", default)]
    pub token_id: Option<String>,
    /// `tokenSecret`.
    #[serde(rename = "tokenSecret", default)]
    pub token_secret: Option<Secret>,
    /// `username`.
    #[serde(default)]
    pub username: Option<String>,
    /// `password`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// `realm`.
    #[serde(default)]
    pub realm: Option<String>,
    /// `caBundle`: PEM text.
    #[serde(rename = "caBundle", default)]
    pub ca_bundle: Option<String>,
    /// `caBundleFile`: path of a PEM file.
    #[serde(rename = "caBundleFile", default)]
    pub ca_bundle_file: Option<String>,
    /// `fingerprint`: SHA-256, colon-separated hex.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct ConfigDocument {
    proxmox: Option<RawProxmoxConfig>,
}

impl RawProxmoxConfig {
    /// Parses a YAML (or JSON) document with a top-level `proxmox:` section; other top-level
    /// keys are ignored, unknown keys inside `proxmox:` are refused.
    pub fn from_yaml_str(doc: &str) -> Result<Self> {
        let parsed: ConfigDocument = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(doc),
        )
        .map_err(|e| {
            parse_error(
                &e.path().to_string(),
                &without_document_text(&e.inner().to_string()),
            )
        })?;
        parsed.proxmox.ok_or_else(|| {
            PveError::config(
                "proxmox",
                "the document has no top-level `proxmox:` section",
            )
        })
    }

    /// Overrides keys from environment variables looked up with `lookup` (see [`ENV_VARS`]).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("PVE_URL") {
            self.url = Some(v);
        }
        if let Some(v) = get("PVE_INSECURE_SKIP_VERIFY") {
            self.insecure_skip_verify = Some(parse_bool(&v).ok_or_else(|| {
                PveError::config(
                    "insecureSkipVerify",
                    format!("PVE_INSECURE_SKIP_VERIFY must be true/false/1/0/yes/no, got {v:?}"),
                )
            })?);
        }
        if let Some(v) = get("PVE_TOKEN_ID") {
            self.token_id = Some(v);
        }
        if let Some(v) = get("PVE_TOKEN_SECRET") {
            self.token_secret = Some(Secret::new(v));
        }
        if let Some(v) = get("PVE_USERNAME") {
            self.username = Some(v);
        }
        if let Some(v) = get("PVE_PASSWORD") {
            self.password = Some(Secret::new(v));
        }
        if let Some(v) = get("PVE_REALM") {
            self.realm = Some(v);
        }
        if let Some(v) = get("PVE_CA_BUNDLE") {
            self.ca_bundle = Some(v);
        }
        if let Some(v) = get("PVE_CA_BUNDLE_FILE") {
            self.ca_bundle_file = Some(v);
        }
        if let Some(v) = get("PVE_FINGERPRINT") {
            self.fingerprint = Some(v);
        }
        Ok(())
    }

    /// Validates the settings and reads `caBundleFile`.
    pub fn resolve(self) -> Result<PveConfig> {
        let url = normalize_url(non_empty(self.url).as_deref())?;
        let credentials = resolve_credentials(
            non_empty(self.token_id),
            self.token_secret.filter(|s| !s.is_empty()),
            non_empty(self.username),
            self.password.filter(|s| !s.is_empty()),
            non_empty(self.realm),
        )?;
        let ca_bundle = match (non_empty(self.ca_bundle), non_empty(self.ca_bundle_file)) {
            (Some(_), Some(_)) => {
                return Err(PveError::config(
                    "caBundle",
                    "caBundle (PEM text) and caBundleFile (a path) are both set; set one",
                ));
            }
            (Some(pem), None) => Some(check_pem("caBundle", pem)?),
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    PveError::config("caBundleFile", format!("cannot read {path:?}: {e}"))
                })?;
                Some(check_pem("caBundleFile", pem)?)
            }
            (None, None) => None,
        };
        let fingerprint = non_empty(self.fingerprint)
            .map(|f| f.parse::<Fingerprint>())
            .transpose()?;
        let insecure = self.insecure_skip_verify.unwrap_or(false);
        let tls = match (insecure, ca_bundle, fingerprint) {
            (true, Some(_), _) | (true, _, Some(_)) => {
                return Err(PveError::config(
                    "insecureSkipVerify",
                    "insecureSkipVerify disables the certificate check that caBundle/fingerprint configure; remove insecureSkipVerify",
                ));
            }
            (_, Some(_), Some(_)) => {
                return Err(PveError::config(
                    "fingerprint",
                    "set either caBundle/caBundleFile or fingerprint, not both",
                ));
            }
            (true, None, None) => TlsTrust::InsecureSkipVerify,
            (false, Some(pem), None) => TlsTrust::CaBundle(pem),
            (false, None, Some(fp)) => TlsTrust::Fingerprint(fp),
            (false, None, None) => TlsTrust::PublicRoots,
        };
        Ok(PveConfig {
            url,
            credentials,
            tls,
        })
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A boolean environment variable: [`crate::de::bool_word`], ignoring case and surrounding
/// whitespace.
fn parse_bool(v: &str) -> Option<bool> {
    crate::de::bool_word(&v.trim().to_ascii_lowercase())
}

fn check_pem(key: &str, pem: String) -> Result<String> {
    if pem.contains("-----BEGIN CERTIFICATE-----") {
        Ok(pem)
    } else {
        Err(PveError::config(
            key,
            "expected PEM text containing -----BEGIN CERTIFICATE----- (use caBundleFile / PVE_CA_BUNDLE_FILE for a path)",
        ))
    }
}

/// A validated connection configuration.
#[derive(Debug, Clone)]
pub struct PveConfig {
    /// The API base URL, always ending in `/api2/json`.
    pub url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// How to trust the server certificate.
    pub tls: TlsTrust,
}

impl PveConfig {
    /// Parses a document with a `proxmox:` section, without looking at the environment.
    pub fn from_yaml_str(doc: &str) -> Result<Self> {
        RawProxmoxConfig::from_yaml_str(doc)?.resolve()
    }

    /// Parses an optional document, then applies environment overrides from `lookup`.
    pub fn load_with_env(
        doc: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut raw = match doc {
            Some(d) => RawProxmoxConfig::from_yaml_str(d)?,
            None => RawProxmoxConfig::default(),
        };
        raw.apply_env(lookup)?;
        raw.resolve()
    }

    /// Reads the optional file at `path`, then applies the process environment (see [`ENV_VARS`]).
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let doc = match path {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
                PveError::config("proxmox", format!("cannot read {}: {e}", p.display()))
            })?),
            None => None,
        };
        Self::load_with_env(doc.as_deref(), |k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests;
