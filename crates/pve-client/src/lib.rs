//! A Proxmox VE API client: authentication, TLS, typed endpoints, tasks and errors.
//!
//! This crate knows nothing about Kubernetes; the controller builds on it.
