//! ProxmoxImages: images Proxmox downloads from a URL (served on loopback by the test), the
//! requests that boot or import them, and what happens when a download fails, the controller
//! crashes mid-download, or the last user goes.

mod admission;
