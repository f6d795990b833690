//! The one error type of the crate, [`PveError`], and the mapping from what Proxmox VE said on
//! the wire (status, reason phrase, JSON `message` and `errors`) to a kind a caller can act on.
//!
//! Proxmox VE 8.x reports a handler error in two styles:
//! * before libpve-http-server-perl 5.2.0 (PVE 8.0 – 8.3.x) the message is **only** in the HTTP
//!   reason phrase (first line), the body being `{"data":null}` (plus `errors` for parameter errors);
//! * since 5.2.0 (late 8.3, all of 8.4) the body also carries the full `message`.
//!
//! [`PveError::from_response`] understands both, preferring the full JSON `message`.
//!
//! This module defines the error and its kinds; beside it live the mapping of a response or task
//! exit status to a variant (`classify`), the removal of secrets from an error's texts (`redact`)
//! and the pieces of the `Display` texts (`display`).

use std::collections::BTreeMap;
use std::fmt;

mod classify;
mod display;
mod redact;

use display::{errors_text, log_tail_text, permission_denied_text};

/// `Result` with [`PveError`] as the default error.
pub type Result<T, E = PveError> = std::result::Result<T, E>;

/// How many characters of a response body a [`PveError::Decode`] keeps.
pub const BODY_EXCERPT_CHARS: usize = 512;

/// How many characters of a Proxmox message (an error message, one per-parameter error, a task
/// exit status) an error keeps; the rest is cut and marked with `…`.
pub const MESSAGE_CHARS: usize = 2048;

/// How many per-parameter errors an error keeps.
pub const MAX_PARAMETER_ERRORS: usize = 64;

/// Every failure this crate reports. Match on it, or ask [`PveError::kind`] and
/// [`PveError::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PveError {
    /// HTTP 401: the credentials were refused (bad or expired ticket, bad token, missing CSRF token).
    #[error("Proxmox VE refused the credentials: {reason}")]
    Unauthorized {
        /// Proxmox's reason, e.g. `invalid token value!` or `No ticket`.
        reason: String,
    },
    /// HTTP 403 (or an in-code root-only check): a privilege is missing.
    #[error("{}", permission_denied_text(path.as_deref(), privileges, detail.as_deref(), message))]
    PermissionDenied {
        /// The ACL path, e.g. `/vms/100`, when Proxmox named one.
        path: Option<String>,
        /// The privilege(s) Proxmox asked for; several means any one of them would do.
        privileges: Vec<String>,
        /// Any other text inside the parentheses, e.g. `pool 'foo' does not exist`.
        detail: Option<String>,
        /// Proxmox's full message.
        message: String,
    },
    /// HTTP 400: parameter verification failed. `errors` maps each parameter to Proxmox's message.
    #[error("invalid parameters: {}", errors_text(message, errors))]
    InvalidParameters {
        /// Proxmox's message, usually `Parameter verification failed.`
        message: String,
        /// Per-parameter messages (`_root` for errors not tied to one parameter).
        errors: BTreeMap<String, String>,
    },
    /// The object does not exist (VM config, storage, task, node).
    #[error("not found: {}", errors_text(message, errors))]
    NotFound {
        /// Proxmox's message.
        message: String,
        /// Per-parameter messages, if any.
        errors: BTreeMap<String, String>,
    },
    /// The object already exists (a VMID taken by another VM).
    #[error("already exists: {}", errors_text(message, errors))]
    AlreadyExists {
        /// Proxmox's message.
        message: String,
        /// Per-parameter messages, if any.
        errors: BTreeMap<String, String>,
    },
    /// The guest config carries a lock (`VM is locked (create)`): retry later.
    #[error("locked: {message}")]
    Locked {
        /// The lock name (`create`, `backup`, `clone`, `destroyed`, ...), when given.
        lock: Option<String>,
        /// Proxmox's message.
        message: String,
    },
    /// A config file lock could not be taken in time (`can't lock file ... - got timeout`): retry later.
    #[error("lock timeout: {message}")]
    LockTimeout {
        /// Proxmox's message.
        message: String,
    },
    /// The `digest` sent with a config update no longer matches: re-read the config and decide again.
    #[error("config changed concurrently (digest mismatch): {message}")]
    DigestMismatch {
        /// Proxmox's message.
        message: String,
    },
    /// The request conflicts with the current state of the guest or cluster (running, stopped,
    /// paused, protected, HA-managed, a template, no guest agent configured, no free VMID left in the
    /// configured range).
    #[error("conflicts with the current state: {message}")]
    Conflict {
        /// Proxmox's message.
        message: String,
    },
    /// A Proxmox task ended with an error exit status.
    #[error("task {upid} failed: {exit_status}{}", log_tail_text(log_tail))]
    TaskFailed {
        /// The task's UPID.
        upid: String,
        /// The task's exit status (the error text).
        exit_status: String,
        /// The last lines of the task log.
        log_tail: Vec<String>,
        /// What the exit status means, classified like an API error message
        /// ([`ErrorKind::TaskFailed`] when not recognised).
        cause: ErrorKind,
    },
    /// HTTP 501/506: the path, method or request form is not implemented by this server.
    #[error("not implemented by this Proxmox VE: {message}")]
    NotImplemented {
        /// Proxmox's message, e.g. `Method 'GET /nodes/pve/foo' not implemented`.
        message: String,
    },
    /// HTTP 5xx not classified above (including the proxy pseudo-statuses 595–599).
    #[error("Proxmox VE server error (HTTP {status}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// Proxmox's message or reason phrase.
        message: String,
    },
    /// Any other HTTP error status.
    #[error("HTTP {status} from Proxmox VE: {}", errors_text(message, errors))]
    Api {
        /// The HTTP status.
        status: u16,
        /// Proxmox's message or reason phrase.
        message: String,
        /// Per-parameter messages, if any.
        errors: BTreeMap<String, String>,
    },
    /// The request did not reach Proxmox or no response came back (DNS, connect, TLS, reset).
    #[error("transport error: {message}")]
    Transport {
        /// What failed, with the causes chained.
        message: String,
    },
    /// The server's TLS certificate was refused: it does not match the pinned `fingerprint`, or no
    /// CA of `caBundle`/`caBundleFile` (or the public roots) vouches for it, or it is expired or
    /// issued for another name. Not retried: the connection config (or the server's certificate)
    /// must change first. No request, and no credential, was sent.
    #[error(
        "the Proxmox VE server's TLS certificate was refused: {message}; if the certificate is \
         the right one (`pvenode cert info` on the node shows its SHA-256 fingerprint), set \
         `fingerprint` or `caBundle` in the connection config accordingly"
    )]
    Certificate {
        /// Why the certificate was refused, with the causes chained.
        message: String,
    },
    /// A deadline passed: the HTTP call's timeout, a task wait, or Proxmox's own `got timeout`.
    #[error("timed out: {message}")]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// A response could not be decoded into the expected type.
    #[error("cannot decode the response of {context}: {reason}; body starts with: {excerpt}")]
    Decode {
        /// The request (`GET /nodes/{node}/qemu`), or the value being decoded.
        context: String,
        /// What did not fit.
        reason: String,
        /// The start of the offending body (at most [`BODY_EXCERPT_CHARS`] characters).
        excerpt: String,
    },
    /// A response body was larger than the client reads (a hostile or broken endpoint, or a
    /// list beyond the configured limit); reading stopped at the limit. Not retried.
    #[error(
        "the response to {endpoint} (HTTP {status}) is larger than the {limit} bytes this client \
         reads; it was not read further"
    )]
    ResponseTooLarge {
        /// The request (`GET /cluster/resources`).
        endpoint: String,
        /// The HTTP status of the response.
        status: u16,
        /// The limit in bytes.
        limit: usize,
    },
    /// A value given to the client was refused before any request was sent.
    #[error("invalid value for {field}: {message}")]
    InvalidInput {
        /// The field, e.g. `net0.bridge` or `sshkeys`.
        field: String,
        /// Why it was refused.
        message: String,
    },
    /// The connection configuration is invalid.
    #[error("invalid Proxmox configuration key `{key}`: {message}")]
    Config {
        /// The key as written in the config file (`url`, `tokenID`, ...) or environment variable.
        key: String,
        /// Why it was refused.
        message: String,
    },
}

/// The kind of a [`PveError`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`PveError::Unauthorized`].
    Unauthorized,
    /// See [`PveError::PermissionDenied`].
    PermissionDenied,
    /// See [`PveError::InvalidParameters`].
    InvalidParameters,
    /// See [`PveError::NotFound`].
    NotFound,
    /// See [`PveError::AlreadyExists`].
    AlreadyExists,
    /// See [`PveError::Locked`].
    Locked,
    /// See [`PveError::LockTimeout`].
    LockTimeout,
    /// See [`PveError::DigestMismatch`].
    DigestMismatch,
    /// See [`PveError::Conflict`].
    Conflict,
    /// See [`PveError::TaskFailed`].
    TaskFailed,
    /// See [`PveError::NotImplemented`].
    NotImplemented,
    /// See [`PveError::Server`].
    Server,
    /// See [`PveError::Api`].
    Api,
    /// See [`PveError::Transport`].
    Transport,
    /// See [`PveError::Certificate`].
    Certificate,
    /// See [`PveError::Timeout`].
    Timeout,
    /// See [`PveError::Decode`].
    Decode,
    /// See [`PveError::ResponseTooLarge`].
    ResponseTooLarge,
    /// See [`PveError::InvalidInput`].
    InvalidInput,
    /// See [`PveError::Config`].
    Config,
}

impl ErrorKind {
    /// Whether an error of this kind is transient: the same request may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Locked
                | ErrorKind::LockTimeout
                | ErrorKind::Server
                | ErrorKind::Transport
                | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl PveError {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PveError::Unauthorized { .. } => ErrorKind::Unauthorized,
            PveError::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            PveError::InvalidParameters { .. } => ErrorKind::InvalidParameters,
            PveError::NotFound { .. } => ErrorKind::NotFound,
            PveError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            PveError::Locked { .. } => ErrorKind::Locked,
            PveError::LockTimeout { .. } => ErrorKind::LockTimeout,
            PveError::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            PveError::Conflict { .. } => ErrorKind::Conflict,
            PveError::TaskFailed { .. } => ErrorKind::TaskFailed,
            PveError::NotImplemented { .. } => ErrorKind::NotImplemented,
            PveError::Server { .. } => ErrorKind::Server,
            PveError::Api { .. } => ErrorKind::Api,
            PveError::Transport { .. } => ErrorKind::Transport,
            PveError::Certificate { .. } => ErrorKind::Certificate,
            PveError::Timeout { .. } => ErrorKind::Timeout,
            PveError::Decode { .. } => ErrorKind::Decode,
            PveError::ResponseTooLarge { .. } => ErrorKind::ResponseTooLarge,
            PveError::InvalidInput { .. } => ErrorKind::InvalidInput,
            PveError::Config { .. } => ErrorKind::Config,
        }
    }

    /// Whether the same request may succeed later (5xx, `got timeout`, lock contention, connection
    /// loss, and tasks that failed for one of those reasons). Permanent errors (bad spec, missing
    /// privilege, missing object) are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            // 599 is AnyEvent::HTTP's "other, usually nonretryable".
            PveError::Server { status, .. } => *status != 599,
            PveError::TaskFailed { cause, .. } => cause.is_retryable(),
            other => other.kind().is_retryable(),
        }
    }

    /// Builds a [`PveError::Decode`] keeping at most [`BODY_EXCERPT_CHARS`] of the body.
    pub fn decode(context: impl Into<String>, reason: impl Into<String>, body: &[u8]) -> PveError {
        PveError::Decode {
            context: context.into(),
            reason: reason.into(),
            excerpt: excerpt(body),
        }
    }

    /// Builds a [`PveError::InvalidInput`].
    pub fn invalid_input(field: impl Into<String>, message: impl Into<String>) -> PveError {
        PveError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Builds a [`PveError::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> PveError {
        PveError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// At most [`MESSAGE_CHARS`] characters of `text`, marked with `…` when cut.
pub(crate) fn clip(text: &str) -> String {
    clip_to(text, MESSAGE_CHARS)
}

/// At most `max` characters of `text`, marked with `…` when cut.
pub(crate) fn clip_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The start of a body, lossily decoded, at most [`BODY_EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
    if text.chars().count() > BODY_EXCERPT_CHARS {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("<empty>");
    }
    out
}

#[cfg(test)]
mod tests;
