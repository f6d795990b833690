//! Client tuning: timeouts, the concurrency bound, the retry policy of idempotent reads, ticket
//! renewal and the response size limits, with defaults that suit one Proxmox VE cluster.

use std::time::Duration;

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
    /// Must be below [`TICKET_LIFETIME`](super::TICKET_LIFETIME); the default renews after 1 hour.
    pub ticket_renew_after: Duration,
    /// The largest successful response body read, in bytes; a larger one is refused with
    /// [`PveError::ResponseTooLarge`](crate::PveError::ResponseTooLarge) without reading the rest. The default, 32 MiB, is about
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
