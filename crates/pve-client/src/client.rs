//! The HTTP transport: one connection pool per client, TLS trust, token or ticket
//! authentication (single-flight login, renewal before expiry, one transparent re-login on 401),
//! a bound on concurrent requests, a timeout on every call, jittered exponential-backoff retries
//! for idempotent GETs only, and a tracing span per request (method, path, status, duration —
//! never a secret).
//!
//! This module holds the client itself (construction, the public calls, redaction and the retry
//! loop); the parts live beside it: the tuning knobs (`options`), the ticket login and renewal
//! (`auth`), one request on the wire (`transport`) and what a failed HTTP call becomes
//! (`errors`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{RwLock, Semaphore};

use crate::config::{Credentials, PveConfig};
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, ParamValue};
use crate::secret::Secret;

mod auth;
mod errors;
mod options;
mod transport;

use auth::{Auth, TicketAuth};
/// For the schema samples, which send the login request and decode its answer.
#[cfg(test)]
pub(crate) use auth::{TicketData, ticket_request};
use errors::error_chain;
pub use options::{
    ClientOptions, DEFAULT_MAX_ERROR_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES, RetryPolicy,
};

/// A Proxmox ticket is valid for 2 hours (`AccessControl.pm` `$ticket_lifetime`).
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

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
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;

#[cfg(test)]
mod canary_tests;
