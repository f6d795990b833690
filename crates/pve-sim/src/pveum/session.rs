//! A logged-in connection to the simulator as root@pam: the ticket login, one API call, and its
//! error as pveum prints it.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// A logged-in connection to the simulator.
pub(super) struct Session {
    /// HTTP client.
    client: reqwest::Client,
    /// `https://host:port/api2/json`.
    api: String,
    /// `PVEAuthCookie=...`.
    cookie: String,
    /// CSRF prevention token.
    csrf: String,
}

/// Whether the URL points at this machine (the simulator's self-signed certificate is then
/// accepted without verification; elsewhere it must be trusted normally).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Session {
    /// Logs in as root@pam.
    pub(super) async fn login(base: &str, password: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').trim_end_matches("/api2/json");
        let parsed = reqwest::Url::parse(base).with_context(|| format!("invalid URL '{base}'"))?;
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(is_loopback(&parsed))
            .build()
            .context("building the HTTP client")?;
        let api = format!("{base}/api2/json");
        let resp = client
            .post(format!("{api}/access/ticket"))
            .form(&[("username", "root@pam"), ("password", password)])
            .send()
            .await
            .with_context(|| format!("connecting to {base}"))?;
        if !resp.status().is_success() {
            bail!("login as root@pam failed: {}", status_line(&resp));
        }
        let body: Value = resp.json().await.context("reading the login answer")?;
        let field = |k: &str| {
            body["data"][k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("login answer without {k}"))
        };
        Ok(Self {
            cookie: format!("PVEAuthCookie={}", field("ticket")?),
            csrf: field("CSRFPreventionToken")?,
            client,
            api,
        })
    }

    /// One API call; returns `data` or the error as pveum prints it.
    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.api);
        let req = match method {
            "GET" => self.client.get(&url).query(params),
            "DELETE" => self.client.delete(&url).query(params),
            "PUT" => self.client.put(&url).form(params),
            _ => self.client.post(&url).form(params),
        };
        let resp = req
            .header("Cookie", &self.cookie)
            .header("CSRFPreventionToken", &self.csrf)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let line = status_line(&resp);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body.get("data").cloned().unwrap_or(Value::Null));
        }
        Err(anyhow!(error_text(status.as_u16(), &line, &body)))
    }
}

/// An API error as pveum prints it: the handler's message (with the status for parameter
/// errors), then one `param: message` line per parameter error.
pub(super) fn error_text(code: u16, status_line: &str, body: &Value) -> String {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.trim_end().to_string());
    let mut msg = match message {
        Some(m) if code == 400 => format!("{code} {m}"),
        Some(m) => m,
        None => status_line.to_string(),
    };
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        for (k, v) in errors {
            msg.push_str(&format!(
                "\n{k}: {}",
                v.as_str().unwrap_or_default().trim_end()
            ));
        }
    }
    msg
}

/// `STATUS REASON` of a response (the reason phrase carries PVE's message).
fn status_line(resp: &reqwest::Response) -> String {
    let status = resp.status();
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// Substitutes path parameters and removes them from the parameter list.
pub(super) fn fill_path(template: &str, params: &mut BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let value = params.remove(name).unwrap_or_default();
                out.push_str(&utf8_percent_encode(&value));
            }
            None => out.push_str(seg),
        }
    }
    out
}

/// Percent-encodes a path segment (keeps `@`, `!` and the unreserved characters).
fn utf8_percent_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'@')
        .remove(b'!');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}
