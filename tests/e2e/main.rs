//! End-to-end tests against a real kube-apiserver and etcd (see `crates/testenv`).
//!
//! One test binary for the whole workspace: each module is one area of behaviour, and the
//! larger areas are folders of modules by topic (`controller/`, `deploy/`, `hostile/`, and
//! `kill.rs` with `kill/`, which the kill bench includes too). `support` holds what the areas
//! share: deadlines, logging, the shared control plane with a namespace, and the [`Harness`]
//! (a namespace, a simulator and the controller in the test process) that most of them use.
//!
//! [`Harness`]: support::Harness

mod canary;
mod control_plane;
mod controller;
mod crds;
mod demo;
mod deploy;
mod hostile;
mod images;
mod kill;
mod leader_overlap;
mod ownership;
mod passthrough;
mod privileges;
mod provisioning;
mod request_cache;
mod status_writes;
mod support;
mod task_failures;
mod tenancy;
mod third_party;
