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

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{PveError, Result};
use crate::secret::Secret;

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

/// The error for a document that does not parse, naming the key. The parser's message may quote
/// the offending value (`invalid type: string "..."`) or an unknown key, and either may be a
/// secret written in the wrong place: a value is never quoted for a secret key, and an unknown
/// key is named only when it looks like a key name.
fn parse_error(path: &str, inner: &str) -> PveError {
    const SECRET_KEYS: [&str; 2] = ["proxmox.tokenSecret", "proxmox.password"];
    const UNKNOWN: &str = "unknown field `";
    if let Some(k) = inner
        .find(UNKNOWN)
        .and_then(|i| inner[i + UNKNOWN.len()..].split('`').next())
    {
        let looks_like_a_key = !k.is_empty()
            && k.len() <= 40
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return if looks_like_a_key {
            let known: Vec<&str> = ENV_VARS.iter().map(|(key, _)| *key).collect();
            PveError::config(
                format!("proxmox.{k}"),
                format!("unknown key; the keys are {}", known.join(", ")),
            )
        } else {
            PveError::config(
                "proxmox",
                "has a key that is not a key name (not shown, in case it holds a value); write `key: value` with a space after the colon",
            )
        };
    }
    if SECRET_KEYS.contains(&path) {
        return PveError::config(path, "must be a string (the value is not shown)");
    }
    let key = if path.starts_with("proxmox.") {
        path.to_owned()
    } else {
        "proxmox".to_owned()
    };
    PveError::config(key, format!("cannot parse the configuration: {inner}"))
}

/// serde and serde_yaml copy text of the document into their messages: the offending value
/// (`invalid type: string "…"`, ``integer `5` ``) or a key (``unknown field `tokenId` ``,
/// `duplicate entry with key "url"`). A misplaced line can put the value of `tokenSecret` or
/// `password` there (`proxmox:` followed by lines without `: ` is one string), so quoted text is
/// kept only when it is a key name, never when it is a value.
fn without_document_text(message: &str) -> String {
    // serde writes ``unknown field `KEY`, expected one of `url`, ...``: the key may itself hold
    // backticks, so it ends at the last "`, expected" (or "`, there are no fields").
    const UNKNOWN: &str = "unknown field `";
    if let Some(start) = message.find(UNKNOWN) {
        let after = start + UNKNOWN.len();
        let end = ["`, expected", "`, there are no fields"]
            .iter()
            .filter_map(|t| message.rfind(t))
            .max()
            .filter(|end| *end >= after);
        if let Some(end) = end {
            let key = &message[after..end];
            return format!(
                "{}{UNKNOWN}{}{}",
                without_document_text(&message[..start]),
                if is_key_name(key) { key } else { "…" },
                &message[end..]
            );
        }
    }
    const VALUE_TYPES: [&str; 5] = [
        "string ",
        "integer ",
        "floating point ",
        "boolean ",
        "character ",
    ];
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        let close = match c {
            '"' | '`' => c,
            _ => {
                out.push(c);
                continue;
            }
        };
        let mut quoted = String::new();
        let mut escaped = false;
        for q in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if q == '\\' && close == '"' {
                escaped = true;
                continue;
            } else if q == close {
                break;
            }
            quoted.push(q);
        }
        let a_value = VALUE_TYPES.iter().any(|t| out.ends_with(t));
        out.push(close);
        out.push_str(if !a_value && is_key_name(&quoted) {
            &quoted
        } else {
            "…"
        });
        out.push(close);
    }
    out
}

/// Whether `s` looks like a configuration key (`tokenID`, `insecureSkipVerify`), not like a value.
fn is_key_name(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
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

/// Normalises `url` to `scheme://host[:port]/api2/json`.
///
/// No message quotes userinfo, a query or a fragment: a URL with an `@` anywhere is refused
/// before it is parsed (a password may hold `/`, `?` or `#`, which would move it out of the
/// userinfo for the parser), and other messages show the URL only up to its first `?` or `#`.
fn normalize_url(url: Option<&str>) -> Result<String> {
    let raw = url.ok_or_else(|| {
        PveError::config(
            "url",
            "missing; set it to https://<proxmox-node>:8006/api2/json (or PVE_URL)",
        )
    })?;
    if raw.contains('@') {
        return Err(PveError::config(
            "url",
            "contains '@': credentials (user:password@) must not be in the URL, and the URL is \
             not repeated here for that reason; set https://<proxmox-node>:8006/api2/json and \
             use tokenID/tokenSecret or username/password",
        ));
    }
    let shown = shown_url(raw);
    let parsed = reqwest::Url::parse(raw)
        .map_err(|e| PveError::config("url", format!("{shown:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(PveError::config(
            "url",
            format!("{shown:?}: the scheme must be https"),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(PveError::config("url", format!("{shown:?} has no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(PveError::config(
            "url",
            "must not contain credentials; use tokenID/tokenSecret or username/password",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(PveError::config(
            "url",
            format!("{shown:?} must not have a query or fragment (not shown here)"),
        ));
    }
    let path = parsed.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/api2/json") {
        return Err(PveError::config(
            "url",
            format!("{shown:?}: the path must be empty or /api2/json, got {path:?}"),
        ));
    }
    let mut base = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    if let Some(port) = parsed.port() {
        base.push_str(&format!(":{port}"));
    }
    base.push_str("/api2/json");
    Ok(base)
}

/// `raw` for messages: cut at the first `?` or `#` (a query may carry a token) and at 200
/// characters. Only called on a URL without `@`.
fn shown_url(raw: &str) -> String {
    let cut = raw.find(['?', '#']).map_or(raw, |i| &raw[..i]);
    let mut out: String = cut.chars().take(200).collect();
    if out.len() < raw.len() {
        out.push('…');
    }
    out
}

fn is_realm(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_user(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/' || c == '@' || c == '!')
}

fn resolve_credentials(
    token_id: Option<String>,
    token_secret: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    realm: Option<String>,
) -> Result<Credentials> {
    let token = token_id.is_some() || token_secret.is_some();
    let ticket = username.is_some() || password.is_some();
    if token && ticket {
        return Err(PveError::config(
            "tokenID",
            "both an API token (tokenID/tokenSecret) and username/password are set; set one (the token is recommended)",
        ));
    }
    if token {
        let token_id = token_id.ok_or_else(|| {
            PveError::config("tokenID", "tokenSecret is set but tokenID is missing")
        })?;
        let secret = token_secret.ok_or_else(|| {
            PveError::config(
                "tokenSecret",
                "tokenID is set but tokenSecret is missing (or PVE_TOKEN_SECRET)",
            )
        })?;
        let valid = token_id.split_once('@').and_then(|(user, rest)| {
            let (realm, name) = rest.split_once('!')?;
            (is_user(user) && is_realm(realm) && is_realm(name)).then_some(())
        });
        if valid.is_none() {
            return Err(PveError::config(
                "tokenID",
                // Not quoted: a secret pasted into the wrong key must not end up in a status.
                "is not of the form USER@REALM!TOKENNAME (e.g. omni@pve!omni-provider)",
            ));
        }
        if secret
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '=')
        {
            return Err(PveError::config(
                "tokenSecret",
                "contains whitespace, a control character or '='; expected a UUID like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            ));
        }
        return Ok(Credentials::Token(ApiToken { token_id, secret }));
    }
    if ticket {
        let username = username.ok_or_else(|| {
            PveError::config("username", "password is set but username is missing")
        })?;
        let password = password.ok_or_else(|| {
            PveError::config("password", "username is set but password is missing")
        })?;
        let userid = match (username.split_once('@'), realm) {
            (Some((user, r)), Some(realm)) if r != realm => {
                return Err(PveError::config(
                    "realm",
                    format!("username {user}@{r} names realm {r:?} but realm is {realm:?}"),
                ));
            }
            (Some((user, r)), _) => (user.to_owned(), r.to_owned()),
            (None, Some(realm)) => (username.clone(), realm),
            (None, None) => {
                return Err(PveError::config(
                    "realm",
                    format!(
                        "username {username:?} has no realm: write {username}@pve (or @pam) or set realm"
                    ),
                ));
            }
        };
        if !is_user(&userid.0) || !is_realm(&userid.1) {
            return Err(PveError::config(
                "username",
                format!(
                    "{}@{} is not a valid Proxmox user id USER@REALM",
                    userid.0, userid.1
                ),
            ));
        }
        return Ok(Credentials::Password {
            userid: format!("{}@{}", userid.0, userid.1),
            password,
        });
    }
    Err(PveError::config(
        "tokenID",
        "no credentials: set tokenID and tokenSecret (or username and password)",
    ))
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

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An API token (recommended).
    Token(ApiToken),
    /// A user and password: a ticket is obtained from `POST /access/ticket` and renewed.
    Password {
        /// `user@realm`.
        userid: String,
        /// The password.
        password: Secret,
    },
}

/// An API token.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// `USER@REALM!TOKENNAME`.
    pub token_id: String,
    /// The secret (a UUID).
    pub secret: Secret,
}

impl ApiToken {
    /// The user that owns the token (`USER@REALM`).
    pub fn userid(&self) -> &str {
        self.token_id
            .split_once('!')
            .map_or(self.token_id.as_str(), |(u, _)| u)
    }
}

/// How the server certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// The public web PKI roots (a certificate from a public CA such as Let's Encrypt).
    PublicRoots,
    /// Only the CA certificates in this PEM bundle (e.g. the cluster's `pve-root-ca.pem`).
    CaBundle(String),
    /// Only a server certificate with this SHA-256 fingerprint (host name and expiry not checked).
    Fingerprint(Fingerprint),
    /// No verification at all (`insecureSkipVerify: true`); logs a warning.
    InsecureSkipVerify,
}

/// A SHA-256 certificate fingerprint, written as Proxmox shows it: `AB:CD:...` (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl FromStr for Fingerprint {
    type Err = PveError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            PveError::config(
                "fingerprint",
                format!(
                    "{s:?} is not a SHA-256 fingerprint: expected 32 colon-separated hex bytes like AB:CD:...:EF, as shown by `pvenode cert info`"
                ),
            )
        };
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (slot, part) in out.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&hex.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests;
