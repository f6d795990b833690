//! End-to-end tests against a real kube-apiserver and etcd (see `crates/testenv`).
//!
//! One test binary for the whole workspace: each module is one area of behaviour.

mod canary;
mod control_plane;
mod controller;
mod crds;
mod demo;
mod deploy;
mod kill;
mod ownership;
mod privileges;
mod support;
mod tenancy;
mod third_party;
