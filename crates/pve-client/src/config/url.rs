//! The `url` key: normalised to `scheme://host[:port]/api2/json`, refused with messages that never
//! quote userinfo, a query or a fragment.

use crate::error::{PveError, Result};

/// Normalises `url` to `scheme://host[:port]/api2/json`.
///
/// No message quotes userinfo, a query or a fragment: a URL with an `@` anywhere is refused
/// before it is parsed (a password may hold `/`, `?` or `#`, which would move it out of the
/// userinfo for the parser), and other messages show the URL only up to its first `?` or `#`.
pub(super) fn normalize_url(url: Option<&str>) -> Result<String> {
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
