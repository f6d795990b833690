//! How the server certificate is trusted: the public roots, a CA bundle, a pinned SHA-256
//! fingerprint, or not at all.

use std::fmt;
use std::str::FromStr;

use crate::error::{PveError, Result};

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
