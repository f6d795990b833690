//! Creating a VM and reading or changing its config (async and sync), with the `digest` for
//! optimistic locking, and its pending changes.

use super::{PendingEntry, VmConfigUpdate, vm_request};
use crate::api::vmconfig::{VmConfigView, VmParams};
use crate::api::{validate_node, validate_vmid};
use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// `POST /nodes/{node}/qemu`: create `vmid` from `config`, optionally starting it.
pub fn create_request(
    node: &str,
    vmid: u32,
    config: &impl VmParams,
    start: bool,
) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_vmid("vmid", vmid)?;
    let config = config.encoded()?;
    let mut p = Params::new();
    p.int("vmid", i64::from(vmid));
    p.extend(config.params().clone());
    if let Some(pool) = config.pool() {
        p.str("pool", pool);
    }
    if start {
        p.bool("start", true);
    }
    Ok(ApiRequest::new(
        Method::Post,
        "/nodes/{node}/qemu",
        &[("node", node)],
        p,
    ))
}

/// `GET /nodes/{node}/qemu/{vmid}/config[?current=1]`.
pub fn config_request(node: &str, vmid: u32, current: bool) -> Result<ApiRequest> {
    let mut p = Params::new();
    if current {
        p.bool("current", true);
    }
    vm_request(
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/config",
        node,
        vmid,
        p,
    )
}

/// `POST` (async) or `PUT` (sync) `/nodes/{node}/qemu/{vmid}/config`. Fails on an update that
/// changes nothing.
pub fn update_request(
    node: &str,
    vmid: u32,
    update: &VmConfigUpdate,
    sync: bool,
) -> Result<ApiRequest> {
    if update.is_empty() {
        return Err(PveError::invalid_input("config", "nothing to change"));
    }
    let method = if sync { Method::Put } else { Method::Post };
    vm_request(
        method,
        "/nodes/{node}/qemu/{vmid}/config",
        node,
        vmid,
        update.params(),
    )
}

/// `GET /nodes/{node}/qemu/{vmid}/pending`.
pub fn pending_request(node: &str, vmid: u32) -> Result<ApiRequest> {
    vm_request(
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/pending",
        node,
        vmid,
        Params::new(),
    )
}

impl PveClient {
    /// `POST /nodes/{node}/qemu`: starts a `qmcreate` task. Fails with
    /// [`PveError::AlreadyExists`] when `vmid` is taken.
    pub async fn qemu_create(
        &self,
        node: &str,
        vmid: u32,
        config: &impl VmParams,
        start: bool,
    ) -> Result<Upid> {
        self.call(&create_request(node, vmid, config, start)?).await
    }

    /// `GET .../config`: the config with pending changes applied, and its `digest`.
    pub async fn qemu_config(&self, node: &str, vmid: u32) -> Result<VmConfigView> {
        self.call(&config_request(node, vmid, false)?).await
    }

    /// `GET .../config?current=1`: the active values (pending changes not applied).
    pub async fn qemu_config_current(&self, node: &str, vmid: u32) -> Result<VmConfigView> {
        self.call(&config_request(node, vmid, true)?).await
    }

    /// `POST .../config`: async update; returns the `qmconfig` task (or `None` if Proxmox finished
    /// it within `background_delay`).
    pub async fn qemu_update_async(
        &self,
        node: &str,
        vmid: u32,
        update: &VmConfigUpdate,
    ) -> Result<Option<Upid>> {
        self.call(&update_request(node, vmid, update, false)?).await
    }

    /// `PUT .../config`: synchronous update.
    pub async fn qemu_update_sync(
        &self,
        node: &str,
        vmid: u32,
        update: &VmConfigUpdate,
    ) -> Result<()> {
        self.execute(&update_request(node, vmid, update, true)?)
            .await
            .map(|_| ())
    }

    /// `GET .../pending`: current and pending values of every key.
    pub async fn qemu_pending(&self, node: &str, vmid: u32) -> Result<Vec<PendingEntry>> {
        self.call(&pending_request(node, vmid)?).await
    }
}
