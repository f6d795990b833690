//! Why a spec cannot be turned into a Proxmox VM configuration.

/// A MachineRequest spec that cannot be mapped to a Proxmox VM configuration. Every message
/// starts with the spec field it is about (`spec.disks[1].slot ...`), so it can go into a
/// condition as it is. These are permanent errors: retrying without a spec change cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A field holds a value that cannot be used, or two fields contradict each other.
    #[error("{field} {reason}")]
    Invalid {
        /// The spec field, e.g. `spec.disks[1].slot`.
        field: String,
        /// What is wrong, phrased to follow the field name.
        reason: String,
    },
    /// The Proxmox configuration built from the spec was refused by the client's encoder (a
    /// value that does not fit its Proxmox format, or that would inject a property-string key).
    #[error("{field} is refused by the Proxmox encoder ({proxmox_key}): {message}")]
    Rejected {
        /// The spec field the Proxmox key was built from, e.g. `spec.networks[0]`.
        field: String,
        /// The Proxmox key (and sub-key) that was refused, e.g. `net0.bridge`.
        proxmox_key: String,
        /// The encoder's reason.
        message: String,
    },
}

impl SpecError {
    /// A [`SpecError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The spec field the error is about.
    pub fn field(&self) -> &str {
        match self {
            Self::Invalid { field, .. } | Self::Rejected { field, .. } => field,
        }
    }
}
