//! Phase 7: the VM's addresses, as its guest agent reports them.

use pve_client::PveError;

use super::super::status::types;
use super::Pass;
use crate::proxmox::VmEntry;

impl Pass<'_> {
    /// Sets `status.ipAddresses` from the guest agent of a running VM that has one (loopback and
    /// link-local addresses left out). An agent that does not answer yet keeps the addresses
    /// known so far; a refused read says which privilege is missing.
    pub(super) async fn read_addresses(&mut self, vm: &VmEntry, running: bool) {
        if !running || !self.request.spec.guest_agent {
            self.status.ip_addresses = Vec::new();
            return;
        }
        match self.conn.pve.qemu_agent_network(&vm.node, vm.vmid).await {
            Ok(interfaces) => {
                self.status.ip_addresses = interfaces
                    .iter()
                    .filter(|i| i.name != "lo")
                    .flat_map(|i| i.ip_addresses.iter())
                    .filter(|a| {
                        !a.ip_address.starts_with("127.")
                            && a.ip_address != "::1"
                            && !a.ip_address.starts_with("fe80:")
                    })
                    .map(|a| a.ip_address.clone())
                    .collect();
            }
            Err(PveError::PermissionDenied { message, .. }) => {
                // Not fatal for the VM, but the user should know why no address shows.
                self.condition(
                    types::PRIVILEGES,
                    false,
                    "MissingPrivilege",
                    format!(
                        "reading addresses from the guest agent of VM {}: {message}",
                        vm.vmid
                    ),
                );
            }
            Err(error) => {
                // A booting guest's agent is not up yet (PVE: "QEMU guest agent is not
                // running"): keep the addresses known so far and ask again soon.
                tracing::debug!(vmid = vm.vmid, %error, "guest agent not answering yet");
            }
        }
    }
}
