//! Tests of the spec mapping against configs shaped the way Proxmox VE 8 stores and returns
//! them (wire-behaviour.md section 5).

mod create;
mod description;
mod drift;
mod fixtures;
mod marker;
mod ssh_keys;
mod template;
mod volumes;
mod wire;
