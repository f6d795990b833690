//! QEMU guests: list, create, config (read with digest, async and sync update), pending, status,
//! power actions, resize, clone, delete, and the guest agent's network interfaces.

use serde::Deserialize;

use super::vmconfig::{DiskSlot, VmConfig, VmConfigView};
use super::{validate_dns_name, validate_node, validate_pool, validate_storage, validate_vmid};
use crate::client::PveClient;
use crate::de;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// An entry of `GET /nodes/{node}/qemu`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QemuListEntry {
    /// The VMID.
    #[serde(deserialize_with = "de::u32")]
    pub vmid: u32,
    /// `running` or `stopped`.
    pub status: String,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Tags (`;`-separated).
    #[serde(default)]
    pub tags: Option<String>,
    /// The config lock, if any.
    #[serde(default)]
    pub lock: Option<String>,
    /// Whether it is a template.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Boot disk size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QemuStatus {
    /// The VMID.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    /// `running` or `stopped`.
    pub status: String,
    /// The QMP state (`running`, `paused`, `prelaunch`, ...).
    #[serde(default)]
    pub qmpstatus: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// The config lock, if any (the key is absent when unlocked).
    #[serde(default)]
    pub lock: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Whether the guest agent is enabled in the config.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub agent: Option<bool>,
    /// Whether it is a template.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    /// CPU utilisation.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Used memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    /// Boot disk size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    /// The QEMU pid when running.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub pid: Option<u64>,
    /// The running QEMU version.
    #[serde(rename = "running-qemu", default)]
    pub running_qemu: Option<String>,
    /// HA state (`{"managed":0}`).
    #[serde(default)]
    pub ha: Option<serde_json::Value>,
}

impl QemuStatus {
    /// Whether the VM is running (and not paused).
    pub fn is_running(&self) -> bool {
        self.status == "running" && self.qmpstatus.as_deref().is_none_or(|q| q == "running")
    }
}

/// An entry of `GET /nodes/{node}/qemu/{vmid}/pending`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingEntry {
    /// The config key.
    pub key: String,
    /// The current value.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub value: Option<String>,
    /// The pending value.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub pending: Option<String>,
    /// 1 = pending delete, 2 = pending force-delete.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub delete: Option<u32>,
}

/// The guest agent's answer to `network-get-interfaces`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentNetworkInterfaces {
    /// The interfaces.
    #[serde(default)]
    pub result: Vec<AgentInterface>,
}

/// A guest network interface as reported by the agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentInterface {
    /// The name inside the guest (`eth0`).
    pub name: String,
    /// The MAC address.
    #[serde(rename = "hardware-address", default)]
    pub hardware_address: Option<String>,
    /// The addresses.
    #[serde(rename = "ip-addresses", default)]
    pub ip_addresses: Vec<AgentIpAddress>,
}

/// An address of a guest interface.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentIpAddress {
    /// The address.
    #[serde(rename = "ip-address")]
    pub ip_address: String,
    /// `ipv4` or `ipv6`.
    #[serde(rename = "ip-address-type")]
    pub ip_address_type: String,
    /// The prefix length.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub prefix: Option<u32>,
}

/// Options of a config update.
#[derive(Debug, Clone, Default)]
pub struct ConfigUpdate {
    /// Keys to delete.
    pub delete: Vec<String>,
    /// The `digest` read before: the update fails with [`PveError::DigestMismatch`] if the
    /// config changed since.
    pub digest: Option<String>,
    /// Pending changes to revert.
    pub revert: Vec<String>,
}

/// Options of `status/stop`.
#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    /// Seconds to wait.
    pub timeout: Option<u32>,
    /// Abort a running shutdown task first.
    pub overrule_shutdown: Option<bool>,
}

/// Options of `status/shutdown`.
#[derive(Debug, Clone, Default)]
pub struct ShutdownOptions {
    /// Seconds to wait (Proxmox default 60).
    pub timeout: Option<u32>,
    /// Stop the VM if the shutdown did not complete in time.
    pub force_stop: Option<bool>,
}

/// Options of `clone`.
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// The new VMID.
    pub newid: u32,
    /// The new name.
    pub name: Option<String>,
    /// `true`: full copy; `false`: linked clone (from a template only).
    pub full: bool,
    /// Target storage (full clones).
    pub storage: Option<String>,
    /// Target node (shared storage only).
    pub target: Option<String>,
    /// Add the new VM to this pool.
    pub pool: Option<String>,
    /// The new description.
    pub description: Option<String>,
}

/// Options of `DELETE /nodes/{node}/qemu/{vmid}`.
#[derive(Debug, Clone, Copy)]
pub struct DeleteOptions {
    /// Also remove the VM from backup jobs, replication and HA.
    pub purge: bool,
    /// Also destroy disks with this VMID that are not referenced in the config.
    pub destroy_unreferenced_disks: bool,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        Self {
            purge: true,
            destroy_unreferenced_disks: true,
        }
    }
}

/// The power actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// `status/start`.
    Start,
    /// `status/stop` (hard stop).
    Stop,
    /// `status/shutdown` (ACPI or agent).
    Shutdown,
    /// `status/reboot` (applies pending changes).
    Reboot,
    /// `status/reset`.
    Reset,
}

impl PowerAction {
    fn template(self) -> &'static str {
        match self {
            PowerAction::Start => "/nodes/{node}/qemu/{vmid}/status/start",
            PowerAction::Stop => "/nodes/{node}/qemu/{vmid}/status/stop",
            PowerAction::Shutdown => "/nodes/{node}/qemu/{vmid}/status/shutdown",
            PowerAction::Reboot => "/nodes/{node}/qemu/{vmid}/status/reboot",
            PowerAction::Reset => "/nodes/{node}/qemu/{vmid}/status/reset",
        }
    }
}

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

/// `POST /nodes/{node}/qemu`: create `vmid` from `config`, optionally starting it.
pub fn create_request(node: &str, vmid: u32, config: &VmConfig, start: bool) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_vmid("vmid", vmid)?;
    let mut p = Params::new();
    p.int("vmid", i64::from(vmid));
    p.extend(config.to_params()?);
    if let Some(pool) = &config.pool {
        validate_pool("pool", pool)?;
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

fn check_key(field: &str, key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(PveError::invalid_input(
            field,
            format!("{key:?} is not a config key"),
        ))
    }
}

/// `POST` (async) or `PUT` (sync) `/nodes/{node}/qemu/{vmid}/config`.
pub fn update_request(
    node: &str,
    vmid: u32,
    config: &VmConfig,
    update: &ConfigUpdate,
    sync: bool,
) -> Result<ApiRequest> {
    if config.pool.is_some() {
        return Err(PveError::invalid_input(
            "pool",
            "the pool is set at create time; pool membership is changed with the pool API",
        ));
    }
    let mut p = config.to_params()?;
    for (field, keys) in [("delete", &update.delete), ("revert", &update.revert)] {
        if keys.is_empty() {
            continue;
        }
        for k in keys {
            check_key(field, k)?;
            if field == "delete" && p.get(k).is_some() {
                return Err(PveError::invalid_input(
                    "delete",
                    format!("{k:?} is both set and deleted"),
                ));
            }
        }
        p.str(field, keys.join(","));
    }
    if let Some(d) = &update.digest {
        if d.is_empty() || d.len() > 40 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(PveError::invalid_input(
                "digest",
                format!("{d:?} is not a config digest"),
            ));
        }
        p.str("digest", d);
    }
    if p.is_empty() {
        return Err(PveError::invalid_input("config", "nothing to change"));
    }
    let method = if sync { Method::Put } else { Method::Post };
    vm_request(method, "/nodes/{node}/qemu/{vmid}/config", node, vmid, p)
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

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
pub fn status_request(node: &str, vmid: u32) -> Result<ApiRequest> {
    vm_request(
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/status/current",
        node,
        vmid,
        Params::new(),
    )
}

/// `POST /nodes/{node}/qemu/{vmid}/status/{action}` with the action's options.
pub fn power_request(
    node: &str,
    vmid: u32,
    action: PowerAction,
    stop: &StopOptions,
    shutdown: &ShutdownOptions,
) -> Result<ApiRequest> {
    let mut p = Params::new();
    match action {
        PowerAction::Stop => {
            p.opt_int("timeout", stop.timeout.map(i64::from));
            p.opt_bool("overrule-shutdown", stop.overrule_shutdown);
        }
        PowerAction::Shutdown => {
            p.opt_int("timeout", shutdown.timeout.map(i64::from));
            p.opt_bool("forceStop", shutdown.force_stop);
        }
        PowerAction::Start | PowerAction::Reboot | PowerAction::Reset => {}
    }
    vm_request(Method::Post, action.template(), node, vmid, p)
}

/// A new disk size for `resize`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskSize {
    /// Grow to this absolute size in GiB.
    AbsoluteGib(u64),
    /// Grow by this many GiB.
    GrowGib(u64),
}

/// `PUT /nodes/{node}/qemu/{vmid}/resize`.
pub fn resize_request(
    node: &str,
    vmid: u32,
    disk: DiskSlot,
    size: DiskSize,
    digest: Option<&str>,
) -> Result<ApiRequest> {
    let mut p = Params::new();
    p.str("disk", disk.to_string());
    p.str(
        "size",
        match size {
            DiskSize::AbsoluteGib(0) | DiskSize::GrowGib(0) => {
                return Err(PveError::invalid_input("size", "must be positive"));
            }
            DiskSize::AbsoluteGib(g) => format!("{g}G"),
            DiskSize::GrowGib(g) => format!("+{g}G"),
        },
    );
    if let Some(d) = digest {
        if d.len() > 40 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(PveError::invalid_input(
                "digest",
                format!("{d:?} is not a config digest"),
            ));
        }
        p.str("digest", d);
    }
    vm_request(
        Method::Put,
        "/nodes/{node}/qemu/{vmid}/resize",
        node,
        vmid,
        p,
    )
}

/// `POST /nodes/{node}/qemu/{vmid}/clone`.
pub fn clone_request(node: &str, vmid: u32, opts: &CloneOptions) -> Result<ApiRequest> {
    validate_vmid("newid", opts.newid)?;
    if opts.newid == vmid {
        return Err(PveError::invalid_input(
            "newid",
            "must differ from the source VMID",
        ));
    }
    let mut p = Params::new();
    p.int("newid", i64::from(opts.newid));
    if let Some(n) = &opts.name {
        validate_dns_name("name", n)?;
        p.str("name", n);
    }
    p.bool("full", opts.full);
    if let Some(s) = &opts.storage {
        if !opts.full {
            return Err(PveError::invalid_input(
                "storage",
                "a target storage needs a full clone",
            ));
        }
        validate_storage("storage", s)?;
        p.str("storage", s);
    }
    if let Some(t) = &opts.target {
        validate_node(t)
            .map_err(|_| PveError::invalid_input("target", format!("{t:?} is not a node name")))?;
        p.str("target", t);
    }
    if let Some(pool) = &opts.pool {
        validate_pool("pool", pool)?;
        p.str("pool", pool);
    }
    if let Some(d) = &opts.description {
        if d.chars().count() > 8192 {
            return Err(PveError::invalid_input(
                "description",
                "longer than 8192 characters",
            ));
        }
        p.str("description", d);
    }
    vm_request(
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/clone",
        node,
        vmid,
        p,
    )
}

/// `DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`.
pub fn delete_request(node: &str, vmid: u32, opts: DeleteOptions) -> Result<ApiRequest> {
    let mut p = Params::new();
    p.bool("purge", opts.purge);
    p.bool(
        "destroy-unreferenced-disks",
        opts.destroy_unreferenced_disks,
    );
    vm_request(Method::Delete, "/nodes/{node}/qemu/{vmid}", node, vmid, p)
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

    /// `POST /nodes/{node}/qemu`: starts a `qmcreate` task. Fails with
    /// [`PveError::AlreadyExists`] when `vmid` is taken.
    pub async fn qemu_create(
        &self,
        node: &str,
        vmid: u32,
        config: &VmConfig,
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
        config: &VmConfig,
        update: &ConfigUpdate,
    ) -> Result<Option<Upid>> {
        self.call(&update_request(node, vmid, config, update, false)?)
            .await
    }

    /// `PUT .../config`: synchronous update.
    pub async fn qemu_update_sync(
        &self,
        node: &str,
        vmid: u32,
        config: &VmConfig,
        update: &ConfigUpdate,
    ) -> Result<()> {
        self.execute(&update_request(node, vmid, config, update, true)?)
            .await
            .map(|_| ())
    }

    /// `GET .../pending`: current and pending values of every key.
    pub async fn qemu_pending(&self, node: &str, vmid: u32) -> Result<Vec<PendingEntry>> {
        self.call(&pending_request(node, vmid)?).await
    }

    /// `GET .../status/current`.
    pub async fn qemu_status(&self, node: &str, vmid: u32) -> Result<QemuStatus> {
        self.call(&status_request(node, vmid)?).await
    }

    /// `POST .../status/start`: a `qmstart` task.
    pub async fn qemu_start(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Start,
            &StopOptions::default(),
            &ShutdownOptions::default(),
        )
        .await
    }

    /// `POST .../status/stop`: a `qmstop` task (hard stop).
    pub async fn qemu_stop(&self, node: &str, vmid: u32, opts: &StopOptions) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Stop,
            opts,
            &ShutdownOptions::default(),
        )
        .await
    }

    /// `POST .../status/shutdown`: a `qmshutdown` task.
    pub async fn qemu_shutdown(
        &self,
        node: &str,
        vmid: u32,
        opts: &ShutdownOptions,
    ) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Shutdown,
            &StopOptions::default(),
            opts,
        )
        .await
    }

    /// `POST .../status/reboot`: a `qmreboot` task (fails with [`PveError::Conflict`] when stopped).
    pub async fn qemu_reboot(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Reboot,
            &StopOptions::default(),
            &ShutdownOptions::default(),
        )
        .await
    }

    /// `POST .../status/reset`: a `qmreset` task.
    pub async fn qemu_reset(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Reset,
            &StopOptions::default(),
            &ShutdownOptions::default(),
        )
        .await
    }

    async fn power(
        &self,
        node: &str,
        vmid: u32,
        action: PowerAction,
        stop: &StopOptions,
        shutdown: &ShutdownOptions,
    ) -> Result<Upid> {
        self.call(&power_request(node, vmid, action, stop, shutdown)?)
            .await
    }

    /// `PUT .../resize`: grows a disk; a `resize` task in PVE 8 (`None` on 7.x, which resized
    /// synchronously).
    pub async fn qemu_resize(
        &self,
        node: &str,
        vmid: u32,
        disk: DiskSlot,
        size: DiskSize,
        digest: Option<&str>,
    ) -> Result<Option<Upid>> {
        self.call(&resize_request(node, vmid, disk, size, digest)?)
            .await
    }

    /// `POST .../clone`: a `qmclone` task (its id is the SOURCE vmid).
    pub async fn qemu_clone(&self, node: &str, vmid: u32, opts: &CloneOptions) -> Result<Upid> {
        self.call(&clone_request(node, vmid, opts)?).await
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}`: a `qmdestroy` task. Fails with [`PveError::Conflict`]
    /// while the VM runs.
    pub async fn qemu_delete(&self, node: &str, vmid: u32, opts: DeleteOptions) -> Result<Upid> {
        self.call(&delete_request(node, vmid, opts)?).await
    }

    /// The guest agent's `network-get-interfaces` (the guest's IP addresses).
    pub async fn qemu_agent_network(&self, node: &str, vmid: u32) -> Result<Vec<AgentInterface>> {
        let r: AgentNetworkInterfaces = self.call(&agent_network_request(node, vmid)?).await?;
        Ok(r.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_adds_vmid_pool_and_start() {
        let cfg = VmConfig {
            cores: Some(2),
            pool: Some("team-a".into()),
            ..VmConfig::default()
        };
        let r = create_request("pve", 100, &cfg, true).unwrap();
        assert_eq!(r.path, "/nodes/pve/qemu");
        assert_eq!(
            r.params.form_encode(),
            "vmid=100&cores=2&pool=team-a&start=1"
        );
        assert!(create_request("pve", 99, &cfg, false).is_err());
        let bad_pool = VmConfig {
            pool: Some("a b".into()),
            ..VmConfig::default()
        };
        assert!(
            matches!(create_request("pve", 100, &bad_pool, false), Err(PveError::InvalidInput { field, .. }) if field == "pool")
        );
    }

    #[test]
    fn update_carries_digest_and_delete_and_refuses_contradictions() {
        let cfg = VmConfig {
            memory_mib: Some(4096),
            ..VmConfig::default()
        };
        let upd = ConfigUpdate {
            delete: vec!["net1".into(), "ide2".into()],
            digest: Some("5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1".into()),
            revert: vec![],
        };
        let r = update_request("pve", 100, &cfg, &upd, false).unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(
            r.params.form_encode(),
            "memory=4096&delete=net1%2Cide2&digest=5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1"
        );
        assert_eq!(
            update_request("pve", 100, &cfg, &upd, true).unwrap().method,
            Method::Put
        );
        let both = ConfigUpdate {
            delete: vec!["memory".into()],
            ..ConfigUpdate::default()
        };
        assert!(update_request("pve", 100, &cfg, &both, true).is_err());
        let evil = ConfigUpdate {
            delete: vec!["net1,args".into()],
            ..ConfigUpdate::default()
        };
        assert!(update_request("pve", 100, &VmConfig::default(), &evil, true).is_err());
        assert!(
            update_request(
                "pve",
                100,
                &VmConfig::default(),
                &ConfigUpdate::default(),
                true
            )
            .is_err()
        );
        let pool = VmConfig {
            pool: Some("p".into()),
            cores: Some(1),
            ..VmConfig::default()
        };
        assert!(update_request("pve", 100, &pool, &ConfigUpdate::default(), true).is_err());
    }

    #[test]
    fn delete_purges_and_destroys_unreferenced_disks_by_default() {
        let r = delete_request("pve", 100, DeleteOptions::default()).unwrap();
        assert_eq!(r.method, Method::Delete);
        assert_eq!(r.path, "/nodes/pve/qemu/100");
        assert_eq!(
            r.params.form_encode(),
            "purge=1&destroy-unreferenced-disks=1"
        );
    }

    #[test]
    fn clone_and_resize_requests() {
        let linked = CloneOptions {
            newid: 101,
            name: Some("clone-1".into()),
            full: false,
            storage: None,
            target: None,
            pool: None,
            description: None,
        };
        let r = clone_request("pve", 9000, &linked).unwrap();
        assert_eq!(r.params.form_encode(), "newid=101&name=clone-1&full=0");
        let bad = CloneOptions {
            storage: Some("local-lvm".into()),
            ..linked.clone()
        };
        assert!(clone_request("pve", 9000, &bad).is_err());
        let same = CloneOptions {
            newid: 9000,
            ..linked
        };
        assert!(clone_request("pve", 9000, &same).is_err());
        let r = resize_request(
            "pve",
            100,
            DiskSlot::scsi(0).unwrap(),
            DiskSize::GrowGib(10),
            None,
        )
        .unwrap();
        assert_eq!(r.params.form_encode(), "disk=scsi0&size=%2B10G");
        assert_eq!(r.method, Method::Put);
        assert!(
            resize_request(
                "pve",
                100,
                DiskSlot::scsi(0).unwrap(),
                DiskSize::AbsoluteGib(0),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn status_and_agent_shapes_decode() {
        let s: QemuStatus = serde_json::from_str(
            r#"{"vmid":101,"status":"running","qmpstatus":"running","name":"vm","cpus":2,"maxmem":2147483648,"maxdisk":34359738368,"disk":0,"mem":123,"cpu":0.01,"uptime":50,"netin":1,"netout":2,"ha":{"managed":0},"pid":1234,"running-qemu":"8.0.2","running-machine":"pc-i440fx-8.0+pve0","agent":1}"#,
        )
        .unwrap();
        assert!(s.is_running());
        assert_eq!(s.agent, Some(true));
        assert_eq!(s.lock, None);
        let paused: QemuStatus = serde_json::from_str(
            r#"{"vmid":"101","status":"running","qmpstatus":"paused","lock":"backup"}"#,
        )
        .unwrap();
        assert!(!paused.is_running());
        assert_eq!(paused.lock.as_deref(), Some("backup"));
        let a: AgentNetworkInterfaces = serde_json::from_str(
            r#"{"result":[{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},{"name":"eth0","hardware-address":"bc:24:11:2e:3f:40","ip-addresses":[{"ip-address":"192.0.2.10","ip-address-type":"ipv4","prefix":24},{"ip-address":"fe80::1","ip-address-type":"ipv6","prefix":64}],"statistics":{"rx-bytes":1}}]}"#,
        )
        .unwrap();
        assert_eq!(a.result[1].ip_addresses[0].ip_address, "192.0.2.10");
        let pending: Vec<PendingEntry> = serde_json::from_str(
            r#"[{"key":"memory","value":"2048","pending":"4096"},{"key":"cores","value":2},{"key":"net1","value":"x","delete":1}]"#,
        )
        .unwrap();
        assert_eq!(pending[1].value.as_deref(), Some("2"));
        assert_eq!(pending[2].delete, Some(1));
    }
}
