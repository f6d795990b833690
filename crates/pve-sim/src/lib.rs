//! A Proxmox VE 8.x API simulator. It shares no code with `pve-client`: the two are independent
//! readings of the Proxmox wire protocol.
pub mod access;
