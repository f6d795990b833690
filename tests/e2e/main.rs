//! End-to-end tests against a real kube-apiserver and etcd (see `crates/testenv`).
//!
//! One test binary for the whole workspace: each module is one area of behaviour.

mod canary;
mod control_plane;
mod controller;
mod crds;
mod demo;
mod deploy;
mod hostile;
mod kill;
mod leader_overlap;
mod ownership;
mod privileges;
mod status_writes;
mod support;
mod task_failures;
mod tenancy;
mod third_party;
