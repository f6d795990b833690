//! Integration tests of pve-client against pve-sim, the project's Proxmox VE simulator (9.1 by
//! default), over real HTTPS. Retries are checked by counting requests in the simulator's
//! `/_sim/stats`.
//!
//! One test binary, `cargo test -p pve-client --test against_sim`, with a module per topic:
//!
//! - `support.rs`: the `Harness` (simulator, clients, `/_sim/*` controls) and shared fixtures.
//! - `auth.rs`: API token, ticket, renewal, re-login, CSRF, refused credentials.
//! - `tls.rs`: pinned fingerprint, CA bundle, refusal of an untrusted certificate.
//! - `inventory.rs`: nodes, storage, network and cluster resources.
//! - `vm_lifecycle.rs`: the full VM lifecycle, and linked and full clones.
//! - `vm_config.rs`: config options round-tripping (UEFI, SATA, IPv6, pools, ...).
//! - `tasks.rs`: task status, log and list, failed tasks.
//! - `errors.rs`: every error kind, in both PVE 8 error styles, and edge cases.
//! - `locks.rs`: config locks held by a task or a backup.
//! - `retries.rs`: dropped connections and slow answers.
//! - `images.rs`: an image downloaded from a URL, imported as a disk, deleted.
//! - `permissions.rs`: a least-privilege token and the privileges it lacks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod errors;
mod images;
mod inventory;
mod locks;
mod permissions;
mod retries;
mod tasks;
mod tls;
mod vm_config;
mod vm_lifecycle;
