//! A Proxmox VE API client: authentication, TLS, typed endpoints, tasks and errors.
//!
//! It supports Proxmox VE 9.x (checked against the 9.1 API schema) and 8.4 ([`PveRelease`]);
//! [`PveClient::version`] tells which one answers. The calls are the same on both; what differs is
//! which privileges Proxmox checks (the controller's privilege table has a column per release)
//! and a few response fields, which the decoders accept from both.
//!
//! This crate knows nothing about Kubernetes; the controller builds on it.
//!
//! # Quick start
//!
//! ```no_run
//! # async fn demo() -> pve_client::Result<()> {
//! use pve_client::api::vmconfig::{Disk, DiskSlot, Drive, Nic, NicModel, VmConfig};
//! use pve_client::{PveClient, PveConfig};
//!
//! // The `proxmox:` section of the source documents; PVE_* environment variables override it.
//! let config = PveConfig::load(Some(std::path::Path::new("/etc/pve-operator/config.yaml")))?;
//! let client = PveClient::new(&config)?;
//!
//! let vmid = client.next_vmid().await?;
//! let vm = VmConfig {
//!     name: Some("web-1".into()),
//!     cores: Some(2),
//!     memory_mib: Some(2048),
//!     tags: vec!["pve-operator".into()],
//!     ..VmConfig::default()
//! }
//! .drive(DiskSlot::scsi(0)?, Drive::Disk(Disk::new("local-lvm", 32.0).discard(true)))
//! .nic(0, Nic::new(NicModel::Virtio, "vmbr0").tag(10));
//! let upid = client.qemu_create("pve", vmid, &vm, false).await?;
//! let exit = client.wait_task(&upid, &Default::default()).await?; // OK or WARNINGS: N
//! # let _ = exit;
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! [`PveConfig`] reads the `proxmox:` section of the source documents (`url`,
//! `insecureSkipVerify`, `tokenID`, `tokenSecret`, or `username`/`password`/`realm`) plus
//! `caBundle`, `caBundleFile` and `fingerprint`. Environment variables supply or override every
//! key: `PVE_URL`, `PVE_INSECURE_SKIP_VERIFY`, `PVE_TOKEN_ID`, `PVE_TOKEN_SECRET`,
//! `PVE_USERNAME`, `PVE_PASSWORD`, `PVE_REALM`, `PVE_CA_BUNDLE`, `PVE_CA_BUNDLE_FILE`,
//! `PVE_FINGERPRINT` (see [`config`]).
//!
//! # Errors
//!
//! Every call returns [`PveError`], whose variants say what Proxmox said, typed
//! (`PermissionDenied { path, privileges }`, `InvalidParameters { errors }`, `NotFound`,
//! `AlreadyExists`, `Locked`, `LockTimeout`, `TaskFailed`, ...); [`PveError::is_retryable`]
//! separates transient from permanent failures.
//!
//! # Modules
//!
//! * [`client`]: transport, auth, retries, concurrency bound, request spans.
//! * [`api`]: typed endpoints and the VM config builder.
//! * [`task`]: UPIDs and task status; [`propstring`]: property strings; [`de`]: lenient decoding.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod client;
pub mod config;
pub mod de;
pub mod error;
pub mod propstring;
pub mod request;
pub mod secret;
pub mod sshkey;
pub mod task;
pub mod tls;

#[cfg(test)]
mod testing;

pub use api::version::PveRelease;
pub use client::{ApiResponse, ClientOptions, PveClient, RetryPolicy};
pub use config::{Credentials, Fingerprint, PveConfig, TlsTrust};
pub use error::{ErrorKind, PveError, Result};
pub use secret::Secret;
pub use task::{ExitStatus, Upid};
