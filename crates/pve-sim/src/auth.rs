//! Authentication as PVE 8.4 and 9.1 (the same): tickets (`PVE:user@realm:HEX::signature`), CSRF prevention tokens,
//! API tokens (`Authorization: PVEAPIToken=user@realm!id=secret`), the exact 401 texts, and
//! `POST /access/ticket`.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::HeaderMap;
use regex::Regex;
use serde_json::{Map, Value, json};

use crate::config::AuthErrorStyle;
use crate::error::ApiError;
use crate::router::{Caller, Ctx, Perm, Reply, Route};
use crate::state::{AuthKeys, SimState};

/// Grace period for tickets from the future (PVE: 300 s).
const GRACE_SECS: i64 = 300;

fn hmac(key_b64: &str, data: &str) -> Vec<u8> {
    let key_bytes = STANDARD.decode(key_b64).unwrap_or_default();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    ring::hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
}

/// Compares without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new ticket for `userid` issued at `now_secs`.
pub fn make_ticket(keys: &AuthKeys, userid: &str, now_secs: u64) -> String {
    let data = format!("PVE:{}:{now_secs:08X}", userid.replace(':', "%3A"));
    let sig = STANDARD.encode(hmac(&keys.ticket_key, &data));
    format!("{data}::{sig}")
}

/// The user of a valid, unexpired ticket.
pub fn verify_ticket(
    keys: &AuthKeys,
    ticket: &str,
    now_secs: u64,
    lifetime: u64,
) -> Option<String> {
    let (data, sig) = ticket.rsplit_once("::")?;
    let rest = data.strip_prefix("PVE:")?;
    let (user, hex) = rest.rsplit_once(':')?;
    if hex.len() != 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let expected = STANDARD.encode(hmac(&keys.ticket_key, data));
    if !ct_eq(expected.as_bytes(), sig.as_bytes()) {
        return None;
    }
    let issued = i64::from_str_radix(hex, 16).ok()?;
    let age = now_secs as i64 - issued;
    (age > -GRACE_SECS && age < lifetime as i64).then(|| user.replace("%3A", ":"))
}

/// A CSRF prevention token bound to `userid`: `HEX:base64(HMAC)` without padding.
pub fn make_csrf(keys: &AuthKeys, userid: &str, now_secs: u64) -> String {
    let ts = format!("{now_secs:08X}");
    let sig = STANDARD_NO_PAD.encode(hmac(&keys.csrf_key, &format!("{ts}:{userid}")));
    format!("{ts}:{sig}")
}

/// Whether `token` is a valid CSRF prevention token for `userid`.
pub fn verify_csrf(
    keys: &AuthKeys,
    token: &str,
    userid: &str,
    now_secs: u64,
    lifetime: u64,
) -> bool {
    let Some((ts, sig)) = token.split_once(':') else {
        return false;
    };
    let expected = STANDARD_NO_PAD.encode(hmac(&keys.csrf_key, &format!("{ts}:{userid}")));
    if !ct_eq(expected.as_bytes(), sig.as_bytes()) {
        return false;
    }
    let Ok(issued) = i64::from_str_radix(ts, 16) else {
        return false;
    };
    let age = now_secs as i64 - issued;
    age > -GRACE_SECS && age < lifetime as i64
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Neither cookie nor token.
    NoTicket,
    /// Bad, expired or forged ticket.
    InvalidTicket,
    /// The access-control engine refused the user or token (disabled, expired, unknown, wrong
    /// secret); its PVE message, e.g. `user 'x@pve' is disabled`, `invalid token value!`.
    Refused(String),
    /// Token value without `=`.
    NoTokenId,
    /// Missing or wrong CSRF prevention token.
    Csrf,
}

impl AuthFailure {
    /// The 401 reason phrase in the given style.
    pub fn reason(&self, style: AuthErrorStyle) -> String {
        match (self, style) {
            (AuthFailure::NoTicket, _) => "No ticket".to_string(),
            (AuthFailure::Csrf, _) => "Permission denied - invalid csrf token".to_string(),
            (_, AuthErrorStyle::Unified) => "Authentication failed!".to_string(),
            (AuthFailure::InvalidTicket, _) => "permission denied - invalid PVE ticket".to_string(),
            (AuthFailure::Refused(msg), _) => msg.clone(),
            (AuthFailure::NoTokenId, _) => "no tokenid specified".to_string(),
        }
    }
}

static COOKIE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s)PVEAuthCookie(?:=| )([^;]*)").expect("static regex"));
static TOKEN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s)PVEAPIToken(?:=| )([^;]*)").expect("static regex"));

fn extract(re: &Regex, header: Option<&str>) -> Option<String> {
    let caps = re.captures(header?)?;
    let raw = caps.get(1)?.as_str();
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .to_string(),
    )
}

/// The credentials of a request, in PVE's precedence: cookie, ticket in `Authorization`, token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A ticket.
    Ticket(String),
    /// An API token value `user@realm!id=secret`.
    Token(String),
    /// Nothing.
    None,
}

impl Credentials {
    /// Reads them from the request headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let cookie = headers.get("cookie").and_then(|v| v.to_str().ok());
        let authz = headers.get("authorization").and_then(|v| v.to_str().ok());
        if let Some(t) = extract(&COOKIE_RE, cookie).or_else(|| extract(&COOKIE_RE, authz)) {
            return Credentials::Ticket(t);
        }
        match extract(&TOKEN_RE, authz) {
            Some(t) => Credentials::Token(t),
            None => Credentials::None,
        }
    }
}

/// Authenticates a request. `csrf` is the `CSRFPreventionToken` header; it is required for
/// ticket-authenticated requests other than GET.
pub fn authenticate(
    state: &SimState,
    creds: &Credentials,
    method: &str,
    csrf: Option<&str>,
    now_secs: u64,
) -> Result<Caller, AuthFailure> {
    let lifetime = state.config.auth.ticket_lifetime_secs;
    match creds {
        Credentials::None => Err(AuthFailure::NoTicket),
        Credentials::Ticket(ticket) => {
            let user = verify_ticket(&state.keys, ticket, now_secs, lifetime)
                .ok_or(AuthFailure::InvalidTicket)?;
            state
                .access
                .check_user_enabled_at(&user, now_secs)
                .map_err(|e| AuthFailure::Refused(e.to_string()))?;
            if method != "GET"
                && !csrf.is_some_and(|c| verify_csrf(&state.keys, c, &user, now_secs, lifetime))
            {
                return Err(AuthFailure::Csrf);
            }
            Ok(Caller {
                userid: user,
                tokenid: None,
            })
        }
        Credentials::Token(value) => {
            let (full, secret) = value.rsplit_once('=').ok_or(AuthFailure::NoTokenId)?;
            let (user, token) = full.split_once('!').ok_or(AuthFailure::NoTokenId)?;
            if token.is_empty() {
                return Err(AuthFailure::NoTokenId);
            }
            // Checks the user (enabled, not expired), the token (exists, not expired) and the
            // secret, on the simulator's clock.
            state
                .access
                .authenticate_token_at(full, secret, now_secs)
                .map_err(|e| AuthFailure::Refused(e.to_string()))?;
            Ok(Caller {
                userid: user.to_string(),
                tokenid: Some(token.to_string()),
            })
        }
    }
}

/// The `/access/ticket` routes (GET is a no-op that lets the GUI show its login form).
pub fn routes() -> Vec<Route> {
    vec![
        Route::new("POST", "/access/ticket", Perm::World, create_ticket).no_token(),
        Route::new("GET", "/access/ticket", Perm::World, |_| {
            Ok(Value::Null.into())
        }),
    ]
}

fn auth_failure() -> ApiError {
    ApiError::new(401, "authentication failure\n")
}

/// `POST /access/ticket`: log in with a password, or renew with a ticket as the password.
fn create_ticket(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let mut username = ctx.param("username")?;
    let password = ctx.param("password")?;
    if let Some(realm) = ctx.params.str("realm")
        && !username.contains('@')
    {
        username = format!("{username}@{realm}");
    }
    let now = ctx.now_secs();
    let state = &ctx.sim.state;
    let lifetime = state.config.auth.ticket_lifetime_secs;
    let enabled = state.access.check_user_enabled_at(&username, now).is_ok();
    let by_ticket = password.starts_with("PVE:")
        && verify_ticket(&state.keys, &password, now, lifetime)
            .is_some_and(|u| (u == username || u == "root@pam") && enabled);
    let ok = by_ticket || (enabled && state.access.verify_password(&username, &password));
    if !ok {
        tracing::info!(user = %username, "authentication failure");
        return Err(auth_failure());
    }
    if let (Some(path), Some(privs)) = (ctx.params.str("path"), ctx.params.str("privs")) {
        let list: Vec<&str> = crate::params::split_list(&privs).collect();
        if !state.access.check(&username, &path, &list, false) {
            return Err(auth_failure());
        }
        return Ok(json!({ "username": username }).into());
    }
    let mut data = json!({
        "username": username,
        "ticket": make_ticket(&state.keys, &username, now),
        "CSRFPreventionToken": make_csrf(&state.keys, &username, now),
        "cap": capabilities(state, &username),
    });
    if let Some(name) = &state.config.cluster_name
        && state.access.check(&username, "/", &["Sys.Audit"], false)
    {
        data["clustername"] = json!(name);
    }
    Ok(data.into())
}

/// The `cap` object: privileges per GUI category.
fn capabilities(state: &SimState, userid: &str) -> Value {
    let cats: [(&str, &str, &[&str]); 7] = [
        ("vms", "/vms", &["VM."]),
        ("access", "/access", &["User.", "Group."]),
        ("storage", "/storage", &["Datastore."]),
        ("nodes", "/nodes", &["Sys."]),
        ("sdn", "/sdn", &["SDN."]),
        ("dc", "/", &["Sys.Audit", "Sys.Modify", "SDN."]),
        ("mapping", "/mapping", &["Mapping."]),
    ];
    let mut out = Map::new();
    for (cat, path, prefixes) in cats {
        let mut privs = Map::new();
        for p in state.access.permissions(userid, path) {
            let matches = prefixes.iter().any(|pre| p.starts_with(pre) || p == *pre)
                || (p == "Permissions.Modify" && cat != "dc");
            if matches {
                privs.insert(p, json!(1));
            }
        }
        out.insert(cat.to_string(), Value::Object(privs));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AuthKeys {
        AuthKeys {
            ticket_key: STANDARD.encode([1u8; 32]),
            csrf_key: STANDARD.encode([2u8; 32]),
        }
    }

    #[test]
    fn ticket_round_trip_and_expiry() {
        let k = keys();
        let t = make_ticket(&k, "root@pam", 1_700_000_000);
        assert!(t.starts_with("PVE:root@pam:6553F100::"));
        assert_eq!(
            verify_ticket(&k, &t, 1_700_000_100, 7200).as_deref(),
            Some("root@pam")
        );
        assert_eq!(verify_ticket(&k, &t, 1_700_007_200, 7200), None);
        assert_eq!(
            verify_ticket(&k, &t.replace("root@pam", "evil@pve"), 1_700_000_100, 7200),
            None
        );
    }

    #[test]
    fn csrf_is_43_chars_after_the_timestamp_and_bound_to_user() {
        let k = keys();
        let c = make_csrf(&k, "root@pam", 1_700_000_000);
        assert_eq!(c.split_once(':').map(|(_, s)| s.len()), Some(43));
        assert!(verify_csrf(&k, &c, "root@pam", 1_700_000_010, 7200));
        assert!(!verify_csrf(&k, &c, "other@pve", 1_700_000_010, 7200));
    }

    #[test]
    fn credentials_precedence_and_token_syntax() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "PVEAPIToken=u@pve!t=abc".parse().expect("header"),
        );
        assert_eq!(
            Credentials::from_headers(&h),
            Credentials::Token("u@pve!t=abc".into())
        );
        h.insert(
            "cookie",
            "PVEAuthCookie=PVE%3Aroot%40pam%3A1::x"
                .parse()
                .expect("header"),
        );
        assert_eq!(
            Credentials::from_headers(&h),
            Credentials::Ticket("PVE:root@pam:1::x".into())
        );
    }
}
