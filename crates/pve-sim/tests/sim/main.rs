//! Integration tests of the simulator, driven over real HTTP(S) with reqwest (and a raw socket
//! where the HTTP reason phrase matters, which reqwest does not expose).
//!
//! One test binary, `cargo test -p pve-sim --test sim`, with a module per topic:
//!
//! - `support.rs`: starting a simulator, the test client `Api`, raw HTTP, `/_sim/*` helpers.
//! - `server.rs`: the HTTPS certificate, the `pve-sim` binary, shutdown on drop.
//! - `auth.rs`: tickets, CSRF, API tokens, 401 reasons, disabled users.
//! - `pipeline.rs`: the order of the checks, error formats, extjs, gzip, odd inputs.
//! - `qemu_lifecycle.rs`: create, start, stop, delete, clone, guest agent, task failures.
//! - `qemu_config.rs`: config updates, digests, pending changes, disks, resize, cloud-init.
//! - `qemu_locks.rs`: config locks, lock waits, racing creators, task order.
//! - `permissions.rs`: privilege checks, filtered lists, pools, task visibility.
//! - `inventory.rs`: read endpoints (nodes, storage, network, cluster), a two-node cluster.
//! - `downloads.rs`: download-url from a loopback HTTP server (`image_server.rs`), deleting files.
//! - `imports.rs`: `import-from` on create and config update, its permissions, resize.
//! - `mappings.rs`: PCI/USB resource mappings and who may pass a device through.
//! - `capacity.rs`: the capacity model: worker pools, 596, flocks, storage locks, bandwidth.
//! - `sim_controls.rs`: faults, latency, stats, persisted state and reset.
//! - `schema.rs`: conformance with the published 8.4 and 9.1 API schemas.
//! - `versions.rs`: what differs between PVE 8.4 and 9.1.

mod support;

mod auth;
mod capacity;
mod downloads;
mod image_server;
mod imports;
mod inventory;
mod mappings;
mod permissions;
mod pipeline;
mod qemu_config;
mod qemu_lifecycle;
mod qemu_locks;
mod schema;
mod server;
mod sim_controls;
mod versions;
