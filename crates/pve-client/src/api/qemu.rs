//! QEMU guests: list, create, config (read with digest, async and sync update), pending, status,
//! power actions, resize, clone, delete, and the guest agent's network interfaces.
//!
//! The modules, all re-exported here: the decoded answers (`responses`), creating and
//! reconfiguring (`config`), status and power actions (`power`), and cloning, resizing and
//! destroying (`lifecycle`).

use super::{validate_node, validate_vmid};
use crate::client::PveClient;
use crate::error::Result;
use crate::request::{ApiRequest, Method, Params};

mod config;
mod lifecycle;
mod power;
mod responses;
mod update;

pub use config::{config_request, create_request, pending_request, update_request};
pub use lifecycle::{
    CloneOptions, DeleteOptions, DiskSize, clone_request, delete_request, resize_request,
};
pub use power::{PowerAction, ShutdownOptions, StopOptions, power_request, status_request};
pub use responses::{
    AgentInterface, AgentIpAddress, AgentNetworkInterfaces, PendingEntry, QemuListEntry, QemuStatus,
};
pub use update::VmConfigUpdate;

/// A request for one VM: checks `node` and `vmid` and fills them into `template`.
fn vm_request(
    method: Method,
    template: &'static str,
    node: &str,
    vmid: u32,
    params: Params,
) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_vmid("vmid", vmid)?;
    let id = vmid.to_string();
    Ok(ApiRequest::new(
        method,
        template,
        &[("node", node), ("vmid", &id)],
        params,
    ))
}

/// `GET /nodes/{node}/qemu`.
pub fn list_request(node: &str) -> Result<ApiRequest> {
    validate_node(node)?;
    Ok(ApiRequest::new(
        Method::Get,
        "/nodes/{node}/qemu",
        &[("node", node)],
        Params::new(),
    ))
}

/// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
pub fn agent_network_request(node: &str, vmid: u32) -> Result<ApiRequest> {
    vm_request(
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
        node,
        vmid,
        Params::new(),
    )
}

impl PveClient {
    /// `GET /nodes/{node}/qemu`: the VMs on `node` the caller may audit.
    pub async fn qemu_list(&self, node: &str) -> Result<Vec<QemuListEntry>> {
        self.call(&list_request(node)?).await
    }

    /// The guest agent's `network-get-interfaces` (the guest's IP addresses).
    pub async fn qemu_agent_network(&self, node: &str, vmid: u32) -> Result<Vec<AgentInterface>> {
        let r: AgentNetworkInterfaces = self.call(&agent_network_request(node, vmid)?).await?;
        Ok(r.result)
    }
}

#[cfg(test)]
mod tests;
