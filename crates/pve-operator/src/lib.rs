//! The pve-operator controller: reconcilers, the privilege model and the command-line interface.

pub mod cli;
pub mod logging;
pub mod ops;
pub mod placement;
pub mod privileges;
pub mod proxmox;
pub mod reconcile;
pub mod tenancy;
pub mod vmspec;
