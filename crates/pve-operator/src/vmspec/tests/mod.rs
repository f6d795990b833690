//! Tests of the spec mapping against configs shaped the way Proxmox VE 8 stores and returns
//! them (wire-behaviour.md section 5).

mod create;
mod description;
mod drift;
#[cfg(feature = "demo")]
mod fake_vm_vs_sim;
mod fixtures;
mod marker;
mod passthrough;
mod ssh_keys;
mod template;
mod tpm;
mod volumes;
mod wire;
