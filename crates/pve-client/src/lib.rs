//! A Proxmox VE API client: authentication, TLS, typed endpoints, tasks and errors.
//!
//! This crate knows nothing about Kubernetes; the controller builds on it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod secret;

pub use error::{ErrorKind, PveError, Result};
pub use secret::Secret;
pub mod client;
pub mod config;
pub mod de;
pub mod propstring;
pub mod request;
pub mod task;
#[cfg(test)]
mod testing;
pub mod tls;

pub use client::{ClientOptions, PveClient, RetryPolicy};
pub use config::PveConfig;
pub mod api;
