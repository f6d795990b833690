//! From a MachineRequest spec to a Proxmox VM configuration, and back: the create and clone
//! calls, the drift plan (what to set, delete, grow, and what cannot be reconciled), and the
//! identity marker that makes a VM recognisably a request's own (docs/design.md principles 1, 2
//! and 7).
//!
//! Pure functions over [`pve_client::api::vmconfig`] types: no I/O. Every value sent to
//! Proxmox goes through the client's encoders, which refuse anything that would inject a
//! property-string key.

mod create;
mod desired;
mod error;
mod marker;
mod name;
mod ownership;
mod plan;
mod release;
mod update;
mod wire;

pub use desired::{Desired, ImageVolumes};
pub use error::SpecError;
pub use marker::Marker;
pub use name::vm_name;
pub use ownership::{MarkerMismatch, Ownership};
pub use plan::UpdatePlan;
pub use release::release_marker;

/// Re-exported for the signatures of this module.
pub use pve_operator_api::machine_request::MachineRequestSpec;

#[cfg(test)]
mod tests;
