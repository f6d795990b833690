//! A Proxmox VE API simulator, of PVE 8.4 or 9.1 ([`PveVersion`], `ClusterConfig::pve_version`).
//! It shares no code with `pve-client`: the two are independent readings of the Proxmox wire
//! protocol.
//!
//! Embed it in tests:
//!
//! ```no_run
//! # async fn demo() -> Result<(), pve_sim::SimError> {
//! let sim = pve_sim::SimServer::start(pve_sim::SimOptions::new("secret")).await?;
//! println!("{} {}", sim.url(), sim.fingerprint());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod access;
mod api;
pub mod auth;
pub mod capacity;
pub mod clock;
pub mod config;
pub mod error;
pub mod faults;
pub mod params;
pub mod persist;
mod pipeline;
pub mod pveum;
pub mod qemu;
pub mod requests;
pub mod response;
pub mod router;
pub mod server;
mod sim_api;
pub mod state;
pub mod stats;
pub mod storage_files;
pub mod tasks;
pub mod tls;
pub mod version;

pub use config::{ClusterConfig, MappingConfig, MappingsConfig};
pub use error::{ApiError, SimError};
pub use server::{RunningSim, SimOptions, SimServer};
pub use version::PveVersion;
