//! The HTTP transport: one connection pool per client, TLS trust, token or ticket
//! authentication (single-flight login, renewal before expiry, one transparent re-login on 401),
//! a bound on concurrent requests, a timeout on every call, jittered exponential-backoff retries
//! for idempotent GETs only, and a tracing span per request (method, path, status, duration —
//! never a secret).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{RwLock, Semaphore};
use tracing::Instrument;

use crate::config::{Credentials, PveConfig};
use crate::error::{ErrorKind, PveError, Result};
use crate::request::{ApiRequest, Method, ParamValue, Params};
use crate::secret::Secret;

/// A Proxmox ticket is valid for 2 hours (`AccessControl.pm` `$ticket_lifetime`).
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Retry policy for idempotent reads. Writes are never retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 disables retries).
    pub max_attempts: u32,
    /// The delay before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// The upper bound of any delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The jittered delay before retry number `attempt + 1`: exponential, capped, and drawn
    /// uniformly from its upper half so that concurrent clients spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.max_backoff);
        let ms = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(ms / 2..=ms))
    }
}

/// Client tuning. The defaults suit one Proxmox VE cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of each HTTP call, from sending to the end of the body.
    pub timeout: Duration,
    /// Timeout of establishing a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// At most this many requests in flight at once (logins and renewals included).
    pub max_concurrent_requests: usize,
    /// Retries of idempotent GETs on retryable errors.
    pub retry: RetryPolicy,
    /// A ticket older than this is renewed (by posting it as the password) before use.
    /// Must be below [`TICKET_LIFETIME`]; the default renews after 1 hour.
    pub ticket_renew_after: Duration,
    /// The largest successful response body read, in bytes; a larger one is refused with
    /// [`PveError::ResponseTooLarge`] without reading the rest. The default, 32 MiB, is about
    /// eight times `/cluster/resources` of a 10,000-VM cluster.
    pub max_response_bytes: usize,
    /// The largest error (non-2xx) response body read, in bytes (Proxmox's error bodies are a
    /// message and a few per-parameter errors). Default 64 KiB.
    pub max_error_body_bytes: usize,
}

/// The default [`ClientOptions::max_response_bytes`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;
/// The default [`ClientOptions::max_error_body_bytes`].
pub const DEFAULT_MAX_ERROR_BODY_BYTES: usize = 64 << 10;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_concurrent_requests: 16,
            retry: RetryPolicy::default(),
            ticket_renew_after: Duration::from_secs(3600),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_error_body_bytes: DEFAULT_MAX_ERROR_BODY_BYTES,
        }
    }
}

/// A successful response: `data`, the optional top-level `total`, and the raw body (for errors).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The `data` member (`null` when absent).
    pub data: Value,
    /// The `total` member of list responses (task log, task list).
    pub total: Option<u64>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// A Proxmox VE API client. Cheap to clone: clones share the connection pool, the ticket and
/// the concurrency bound.
#[derive(Clone)]
pub struct PveClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveClient")
            .field("url", &self.inner.base)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    /// The credential (token secret or password), removed from every error text.
    credential: Secret,
    limiter: Semaphore,
    options: ClientOptions,
    logins: AtomicU64,
}

enum Auth {
    Token(HeaderValue),
    Ticket(TicketAuth),
}

struct TicketAuth {
    userid: String,
    password: Secret,
    state: RwLock<Option<Arc<Ticket>>>,
}

struct Ticket {
    ticket: Secret,
    csrf: Secret,
    obtained: Instant,
    /// After a transient renewal failure, the next renewal attempt waits until then.
    renew_not_before: Option<Instant>,
}

/// How long to wait before renewing again after a transient renewal failure.
const RENEW_RETRY_DELAY: Duration = Duration::from_secs(30);

impl Ticket {
    /// Whether the ticket can be used as is (fresh, or renewal paused while still valid).
    fn usable_without_renewal(&self, renew_after: Duration) -> bool {
        let age = self.obtained.elapsed();
        age < renew_after
            || (self.renew_not_before.is_some_and(|t| Instant::now() < t)
                && age + Duration::from_secs(60) < TICKET_LIFETIME)
    }
}

struct RawResponse {
    status: u16,
    reason: Option<String>,
    body: Vec<u8>,
}

impl PveClient {
    /// Builds a client with default [`ClientOptions`].
    pub fn new(config: &PveConfig) -> Result<Self> {
        Self::with_options(config, ClientOptions::default())
    }

    /// Builds a client. No request is sent until the first call.
    pub fn with_options(config: &PveConfig, options: ClientOptions) -> Result<Self> {
        let builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            // pveproxy speaks HTTP/1.1 only (and PVE < 8.3 reports errors in the HTTP/1 reason
            // phrase); idle connections are dropped early so that a write is never sent on a
            // connection the server is about to close.
            .http1_only()
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!(
                "pve-operator-pve-client/",
                env!("CARGO_PKG_VERSION")
            ));
        let builder = crate::tls::configure(builder, &config.tls)?;
        if config.url.starts_with("http://") {
            tracing::warn!(url = %config.url, "the Proxmox VE URL is plain http: credentials travel unencrypted");
        }
        let http = builder.build().map_err(|e| {
            PveError::config(
                "url",
                format!("cannot build the HTTP client: {}", error_chain(&e)),
            )
        })?;
        let auth = match &config.credentials {
            Credentials::Token(t) => {
                let mut v = HeaderValue::from_str(&format!(
                    "PVEAPIToken={}={}",
                    t.token_id,
                    t.secret.expose()
                ))
                .map_err(|_| {
                    PveError::config(
                        "tokenSecret",
                        "contains characters not allowed in an HTTP header",
                    )
                })?;
                v.set_sensitive(true);
                Auth::Token(v)
            }
            Credentials::Password { userid, password } => Auth::Ticket(TicketAuth {
                userid: userid.clone(),
                password: password.clone(),
                state: RwLock::new(None),
            }),
        };
        let credential = match &config.credentials {
            Credentials::Token(t) => t.secret.clone(),
            Credentials::Password { password, .. } => password.clone(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: config.url.clone(),
                auth,
                credential,
                limiter: Semaphore::new(options.max_concurrent_requests.max(1)),
                options,
                logins: AtomicU64::new(0),
            }),
        })
    }

    /// The API base URL (`https://host:8006/api2/json`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// How many times this client posted to `/access/ticket` (logins and renewals).
    pub fn login_count(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// Sends `req` and decodes `data` into `T`.
    pub async fn call<T: DeserializeOwned>(&self, req: &ApiRequest) -> Result<T> {
        let resp = self.execute(req).await?;
        crate::de::decode(resp.data, &req.describe(), &resp.body)
    }

    /// Sends `req`; GETs are retried with jittered backoff on retryable errors, other methods are
    /// sent once (plus one re-login after a 401 on an expired ticket, which Proxmox answers
    /// before doing anything).
    ///
    /// No error carries the client's credential, a secret parameter of `req` or a path segment
    /// that could change the path (`.`, `..`, empty): such a request is refused unsent.
    pub async fn execute(&self, req: &ApiRequest) -> Result<ApiResponse> {
        req.check_path()?;
        self.execute_checked(req)
            .await
            .map_err(|e| self.redact(e, req))
    }

    /// `error` without the credential or a secret parameter of `req` in any of its texts.
    pub(crate) fn redact(&self, error: PveError, req: &ApiRequest) -> PveError {
        let mut secrets = vec![self.inner.credential.expose()];
        secrets.extend(req.params.iter().filter_map(|(_, v)| match v {
            ParamValue::Secret(s) => Some(s.expose()),
            _ => None,
        }));
        if let Auth::Token(header) = &self.inner.auth
            && let Ok(text) = header.to_str()
        {
            secrets.push(text);
        }
        error.redacted(&secrets)
    }

    /// `text` with the client's credential replaced by `***` (for texts that are data, not
    /// errors, yet end up in statuses: task exit statuses and task-log lines).
    pub(crate) fn without_credential(&self, text: &str) -> String {
        let secret = self.inner.credential.expose();
        if secret.len() >= 4 && text.contains(secret) {
            text.replace(secret, "***")
        } else {
            text.to_owned()
        }
    }

    async fn execute_checked(&self, req: &ApiRequest) -> Result<ApiResponse> {
        let policy = &self.inner.options.retry;
        let mut attempt = 0u32;
        loop {
            match self.send_once(req).await {
                Err(e)
                    if req.method == Method::Get
                        && e.is_retryable()
                        && attempt + 1 < policy.max_attempts =>
                {
                    let delay = policy.backoff(attempt);
                    tracing::debug!(
                        method = req.method.as_str(),
                        path = %req.path,
                        error = %e,
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "retrying idempotent request"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, req: &ApiRequest) -> Result<ApiResponse> {
        let ticket = match &self.inner.auth {
            Auth::Ticket(t) => Some(self.ticket(t).await?),
            Auth::Token(_) => None,
        };
        // A server may quote the cookie or CSRF token back: neither goes into an error.
        let without_ticket = |e: PveError, t: Option<&Ticket>| match t {
            Some(t) => e.redacted(&[t.ticket.expose(), t.csrf.expose()]),
            None => e,
        };
        let raw = self
            .send_raw(req, ticket.as_deref())
            .await
            .map_err(|e| without_ticket(e, ticket.as_deref()))?;
        if raw.status == 401
            && let (Auth::Ticket(t), Some(used)) = (&self.inner.auth, &ticket)
        {
            tracing::debug!(path = %req.path, "ticket refused; logging in again");
            t.invalidate(used).await;
            let fresh = self.ticket(t).await?;
            return self
                .send_raw(req, Some(&fresh))
                .await
                .and_then(|raw| finish(req, raw))
                .map_err(|e| without_ticket(without_ticket(e, Some(used)), Some(&fresh)));
        }
        finish(req, raw).map_err(|e| without_ticket(e, ticket.as_deref()))
    }

    /// The current ticket; logs in or renews under the write lock, so concurrent callers wait for
    /// one login instead of each starting their own.
    async fn ticket(&self, t: &TicketAuth) -> Result<Arc<Ticket>> {
        let renew_after = self.inner.options.ticket_renew_after;
        if let Some(cur) = t.state.read().await.as_ref()
            && cur.usable_without_renewal(renew_after)
        {
            return Ok(cur.clone());
        }
        let mut state = t.state.write().await;
        if let Some(cur) = state.as_ref() {
            if cur.usable_without_renewal(renew_after) {
                return Ok(cur.clone());
            }
            if cur.obtained.elapsed() + Duration::from_secs(60) < TICKET_LIFETIME {
                match self.login(&t.userid, &cur.ticket).await {
                    Ok(new) => {
                        *state = Some(new.clone());
                        return Ok(new);
                    }
                    Err(e) if e.kind() == ErrorKind::Unauthorized => {
                        tracing::debug!("ticket renewal refused; logging in with the password");
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_s = RENEW_RETRY_DELAY.as_secs(),
                            "ticket renewal failed; using the current ticket until it expires"
                        );
                        let kept = Arc::new(Ticket {
                            ticket: cur.ticket.clone(),
                            csrf: cur.csrf.clone(),
                            obtained: cur.obtained,
                            renew_not_before: Some(Instant::now() + RENEW_RETRY_DELAY),
                        });
                        *state = Some(kept.clone());
                        return Ok(kept);
                    }
                }
            }
        }
        let new = self.login(&t.userid, &t.password).await?;
        *state = Some(new.clone());
        Ok(new)
    }

    /// `POST /access/ticket` with a password or (renewal) the current ticket.
    async fn login(&self, userid: &str, password: &Secret) -> Result<Arc<Ticket>> {
        self.login_once(userid, password)
            .await
            .map_err(|e| e.redacted(&[password.expose()]))
    }

    async fn login_once(&self, userid: &str, password: &Secret) -> Result<Arc<Ticket>> {
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        let req = ticket_request(userid, password);
        let raw = self.send_raw(&req, None).await?;
        let resp = finish(&req, raw)?;
        // The body holds a ticket: never quote it in an error.
        let data: TicketData =
            crate::de::decode(resp.data, &req.describe(), b"<redacted: contains a ticket>")?;
        if data.need_tfa == Some(true) {
            return Err(PveError::Unauthorized {
                reason: format!(
                    "{userid} requires a second factor (TFA), which this client does not support; use an API token"
                ),
            });
        }
        match (data.ticket, data.csrf) {
            (Some(ticket), Some(csrf)) if !ticket.is_empty() && !csrf.is_empty() => {
                Ok(Arc::new(Ticket {
                    ticket: Secret::new(ticket),
                    csrf: Secret::new(csrf),
                    obtained: Instant::now(),
                    renew_not_before: None,
                }))
            }
            _ => Err(PveError::decode(
                req.describe(),
                "the response has no ticket or no CSRFPreventionToken",
                b"<redacted: contains a ticket>",
            )),
        }
    }

    async fn send_raw(&self, req: &ApiRequest, ticket: Option<&Ticket>) -> Result<RawResponse> {
        let span = tracing::debug_span!(
            "pve_request",
            method = req.method.as_str(),
            path = %req.path,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        async move {
            let _permit = self
                .inner
                .limiter
                .acquire()
                .await
                .map_err(|_| PveError::Transport {
                    message: "the client's request limiter is closed".into(),
                })?;
            let started = Instant::now();
            let result = self.send_http(req, ticket).await;
            let span = tracing::Span::current();
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            span.record("duration_ms", ms);
            match &result {
                Ok(raw) => {
                    span.record("status", raw.status);
                    tracing::debug!(
                        status = raw.status,
                        duration_ms = ms,
                        "Proxmox VE request done"
                    );
                }
                Err(e) => {
                    tracing::debug!(error = %e, duration_ms = ms, "Proxmox VE request failed")
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_http(&self, req: &ApiRequest, ticket: Option<&Ticket>) -> Result<RawResponse> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut url = format!("{}{}", self.inner.base, req.path);
        let mut rb = if req.method.has_body() {
            self.inner
                .http
                .request(method, url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(req.params.form_encode())
        } else {
            if !req.params.is_empty() {
                url.push('?');
                url.push_str(&req.params.form_encode());
            }
            self.inner.http.request(method, url)
        };
        let is_login = req.template == "/access/ticket";
        if !is_login {
            match (&self.inner.auth, ticket) {
                (Auth::Token(v), _) => rb = rb.header(AUTHORIZATION, v.clone()),
                (Auth::Ticket(_), Some(t)) => {
                    let cookie = format!(
                        "PVEAuthCookie={}",
                        percent_encoding::utf8_percent_encode(
                            t.ticket.expose(),
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    );
                    rb = rb.header(COOKIE, sensitive(&cookie)?);
                    if req.method != Method::Get {
                        rb = rb.header("CSRFPreventionToken", sensitive(t.csrf.expose())?);
                    }
                }
                (Auth::Ticket(_), None) => {}
            }
        }
        let resp = rb.send().await.map_err(map_reqwest)?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        let limit = if (200..300).contains(&status) {
            self.inner.options.max_response_bytes
        } else {
            self.inner.options.max_error_body_bytes
        };
        let body = read_body(resp, limit, req, status).await?;
        Ok(RawResponse {
            status,
            reason,
            body,
        })
    }
}

/// Reads at most `limit` bytes of the body: refused at once when the announced length is larger,
/// otherwise chunk by chunk until the limit is passed, when the response is dropped unread (the
/// connection with it).
async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
    req: &ApiRequest,
    status: u16,
) -> Result<Vec<u8>> {
    let too_large = || PveError::ResponseTooLarge {
        endpoint: req.describe(),
        status,
        limit,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl TicketAuth {
    /// Forgets `used` if it is still the current ticket (a concurrent caller may already have
    /// replaced it, in which case the new one is kept).
    async fn invalidate(&self, used: &Arc<Ticket>) {
        let mut state = self.state.write().await;
        if state.as_ref().is_some_and(|cur| cur.ticket == used.ticket) {
            *state = None;
        }
    }
}

/// `POST /access/ticket` with `username` and `password` (a password or, to renew, a ticket).
pub(crate) fn ticket_request(userid: &str, password: &Secret) -> ApiRequest {
    let mut params = Params::new();
    params
        .str("username", userid)
        .set("password", ParamValue::Secret(password.clone()));
    ApiRequest::new(Method::Post, "/access/ticket", &[], params)
}

/// The `data` of `POST /access/ticket`.
#[derive(serde::Deserialize)]
pub(crate) struct TicketData {
    ticket: Option<String>,
    #[serde(rename = "CSRFPreventionToken")]
    csrf: Option<String>,
    #[serde(rename = "NeedTFA", default, deserialize_with = "crate::de::opt_bool")]
    need_tfa: Option<bool>,
}

fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| PveError::Transport {
        message: "the ticket or CSRF token from Proxmox contains characters not allowed in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn finish(req: &ApiRequest, raw: RawResponse) -> Result<ApiResponse> {
    if !(200..300).contains(&raw.status) {
        return Err(PveError::from_response(
            raw.status,
            raw.reason.as_deref(),
            &raw.body,
        ));
    }
    let value: Value = serde_json::from_slice(&raw.body).map_err(|e| {
        PveError::decode(
            req.describe(),
            format!("the body is not JSON ({e})"),
            &raw.body,
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(PveError::decode(
            req.describe(),
            "expected a JSON object with a `data` member",
            &raw.body,
        ));
    };
    let data = map.remove("data").unwrap_or(Value::Null);
    let total = map.get("total").and_then(|t| match t {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    Ok(ApiResponse {
        data,
        total,
        body: raw.body,
    })
}

/// The error and its causes, joined (reqwest's own message alone hides the TLS or IO cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

fn map_reqwest(e: reqwest::Error) -> PveError {
    if e.is_timeout() {
        return PveError::Timeout {
            message: error_chain(&e),
        };
    }
    match rustls_cause(&e) {
        Some(rustls::Error::InvalidCertificate(problem)) => {
            let why = match problem {
                // The pinned-fingerprint verifier's own error: its text says it all.
                rustls::CertificateError::Other(other) => other.0.to_string(),
                problem => certificate_problem(problem),
            };
            let server = e
                .url()
                .map(|url| {
                    format!(
                        " by {}:{}",
                        url.host_str().unwrap_or("?"),
                        url.port_or_known_default().unwrap_or(443)
                    )
                })
                .unwrap_or_default();
            PveError::Certificate {
                message: format!("{why} (presented{server})"),
            }
        }
        _ => PveError::Transport {
            message: error_chain(&e),
        },
    }
}

/// Why a certificate failed verification, in words.
fn certificate_problem(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match problem {
        E::UnknownIssuer => "it is not signed by a trusted CA (the caBundle/caBundleFile, or the \
                             public roots when neither is set)"
            .into(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it is not issued for the host name of the url".into()
        }
        E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".into(),
        E::Revoked => "it has been revoked".into(),
        other => format!("{other:?}"),
    }
}

/// The TLS error behind a failed request, if any. An `io::Error` hides the error it wraps from
/// `source()` (it returns that error's own source), and the TLS stack nests them, so a wrapped
/// error is followed directly.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;

#[cfg(test)]
mod canary_tests;
