//! Errors as PVE reports them to API clients, and the simulator's own errors.

use std::collections::BTreeMap;

/// An error answered to an API client: HTTP status, message (its first line becomes the reason
/// phrase) and optional per-parameter errors, as PVE's `PVE::Exception`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Full message; PVE messages usually end with `\n`.
    pub message: String,
    /// Per-parameter errors (`{"errors": {...}}` in the body).
    pub errors: BTreeMap<String, String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            errors: BTreeMap::new(),
        }
    }

    /// A handler `die`: HTTP 500 with the message plus a trailing newline.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(500, format!("{message}\n"))
    }

    /// 403 `Permission check failed (<what>)`.
    pub fn perm(what: impl std::fmt::Display) -> Self {
        Self::new(403, format!("Permission check failed ({what})\n"))
    }

    /// A bare 403 `Permission check failed`.
    pub fn perm_bare() -> Self {
        Self::new(403, "Permission check failed\n")
    }

    /// 400 `Parameter verification failed.` with the given per-parameter errors.
    pub fn params(errors: BTreeMap<String, String>) -> Self {
        Self {
            code: 400,
            message: "Parameter verification failed.\n".to_string(),
            errors,
        }
    }

    /// 400 `Parameter verification failed.` with one parameter error.
    pub fn param(name: &str, msg: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(name.to_string(), msg.into());
        Self::params(errors)
    }

    /// The first line of the message: the HTTP reason phrase.
    pub fn reason(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.reason())
    }
}

impl std::error::Error for ApiError {}

/// Errors of starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The cluster configuration could not be read or is invalid.
    #[error("cluster config: {0}")]
    Config(String),
    /// The TLS certificate could not be generated or loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// An I/O error (binding the socket, reading or writing the state file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The state file could not be parsed or written.
    #[error("state file: {0}")]
    State(String),
}

impl SimError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
