//! Tenancy (docs/design.md "Tenancy"): MachineRequests and ProxmoxClusters are namespaced, so
//! several teams share one controller. A cluster-scoped ProxmoxIdentity, created by the admin,
//! binds credentials to their endpoint and says which namespaces may use them and for what; a
//! namespace's ProxmoxCluster refers to an identity and can only narrow it.
//!
//! * [`namespaces`]: which namespaces an identity (or the default connection) serves.
//! * [`policy`]: the allow-lists that apply to one request, and the refusals they give.
//! * [`secrets`]: the identities' Secrets, each read and watched by name.

pub mod namespaces;
pub mod policy;
pub mod secrets;

pub use namespaces::NamespaceRule;
pub use policy::{Policy, Refusal, Refusals, Source};
