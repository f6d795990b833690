//! Nodes: `GET /nodes`, node status, storages of a node, storage content, node network.

use serde::Deserialize;

use super::{ensure, validate_node, validate_storage, validate_vmid};
use crate::client::PveClient;
use crate::de;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};

/// An entry of `GET /nodes`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeInfo {
    /// The node name.
    pub node: String,
    /// `online`, `offline` or `unknown`.
    pub status: String,
    /// CPU utilisation (0..1), without Sys.Audit absent.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxcpu: Option<u64>,
    /// Used memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    /// The SHA-256 fingerprint of the node certificate (colon-separated hex).
    #[serde(default)]
    pub ssl_fingerprint: Option<String>,
    /// Subscription level (`""` when none).
    #[serde(default)]
    pub level: Option<String>,
}

/// `GET /nodes/{node}/status` (the fields a provisioner reads; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeStatus {
    /// CPU utilisation (0..1).
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    /// Memory usage.
    #[serde(default)]
    pub memory: Option<NodeMemory>,
    /// The pve-manager version string.
    #[serde(default)]
    pub pveversion: Option<String>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    /// CPU information.
    #[serde(default)]
    pub cpuinfo: Option<NodeCpuInfo>,
}

/// Memory of a node in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeMemory {
    /// Total.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total: Option<u64>,
    /// Used.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub used: Option<u64>,
    /// Free.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub free: Option<u64>,
}

/// CPU information of a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeCpuInfo {
    /// Logical CPUs.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub cpus: Option<u64>,
    /// Sockets.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub sockets: Option<u64>,
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
}

/// An entry of `GET /nodes/{node}/storage`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StorageInfo {
    /// The storage ID.
    pub storage: String,
    /// The plugin type (`dir`, `lvmthin`, `zfspool`, `rbd`, ...).
    #[serde(rename = "type")]
    pub storage_type: String,
    /// Allowed content types, comma-separated (`images,rootdir`).
    #[serde(default)]
    pub content: String,
    /// Enabled.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enabled: Option<bool>,
    /// Active (accessible).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub active: Option<bool>,
    /// Shared between nodes.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub shared: Option<bool>,
    /// Size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total: Option<u64>,
    /// Used bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub used: Option<u64>,
    /// Available bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub avail: Option<u64>,
    /// used / total (only when total > 0).
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub used_fraction: Option<f64>,
}

impl StorageInfo {
    /// Whether the storage allows `content` (`images`, `iso`, ...).
    pub fn supports(&self, content: &str) -> bool {
        self.content.split(',').any(|c| c.trim() == content)
    }
}

/// An entry of `GET /nodes/{node}/storage/{storage}/content`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StorageVolume {
    /// The volume ID (`local:iso/debian-12.iso`).
    pub volid: String,
    /// The format (`iso`, `raw`, `qcow2`, ...).
    #[serde(default)]
    pub format: String,
    /// The content type (`iso`, `images`, ...).
    #[serde(default)]
    pub content: Option<String>,
    /// Size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub size: Option<u64>,
    /// The owning VMID.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    /// Creation time.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub ctime: Option<i64>,
}

/// An entry of `GET /nodes/{node}/network`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NetworkInterface {
    /// The interface name (`vmbr0`).
    pub iface: String,
    /// The type (`bridge`, `OVSBridge`, `eth`, `bond`, `vlan`, ...).
    #[serde(rename = "type")]
    pub iface_type: String,
    /// Active.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub active: Option<bool>,
    /// VLAN aware (bridges).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub bridge_vlan_aware: Option<bool>,
    /// Bridge ports.
    #[serde(default)]
    pub bridge_ports: Option<String>,
    /// IPv4 CIDR.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Comments.
    #[serde(default)]
    pub comments: Option<String>,
}

impl NetworkInterface {
    /// Whether a VM NIC can attach to it (Linux or OVS bridge).
    pub fn is_bridge(&self) -> bool {
        matches!(self.iface_type.as_str(), "bridge" | "OVSBridge")
    }
}

/// The `type` filter of `GET /nodes/{node}/network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkTypeFilter {
    /// Linux bridges.
    Bridge,
    /// Any bridge (Linux, OVS, SDN vnets).
    AnyBridge,
    /// Local bridges only (Linux and OVS).
    AnyLocalBridge,
}

impl NetworkTypeFilter {
    fn as_str(self) -> &'static str {
        match self {
            NetworkTypeFilter::Bridge => "bridge",
            NetworkTypeFilter::AnyBridge => "any_bridge",
            NetworkTypeFilter::AnyLocalBridge => "any_local_bridge",
        }
    }
}

/// `GET` of `template` below `/nodes/{node}`, with its `path` parameters and query `params`.
fn node_get(template: &'static str, path: &[(&str, &str)], params: Params) -> ApiRequest {
    ApiRequest::new(Method::Get, template, path, params)
}

/// `GET /nodes`.
pub fn nodes_request() -> ApiRequest {
    ApiRequest::new(Method::Get, "/nodes", &[], Params::new())
}

/// `GET /nodes/{node}/status`.
pub fn node_status_request(node: &str) -> Result<ApiRequest> {
    validate_node(node)?;
    Ok(node_get(
        "/nodes/{node}/status",
        &[("node", node)],
        Params::new(),
    ))
}

fn check_content(field: &str, content: &str) -> Result<()> {
    let ok = !content.is_empty()
        && content
            .split(',')
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase()));
    ensure(ok, field, || {
        format!("{content:?} is not a content type list such as images or iso,vztmpl")
    })
}

/// `GET /nodes/{node}/storage[?content=...&enabled=1]`.
pub fn storages_request(
    node: &str,
    content: Option<&str>,
    enabled_only: bool,
) -> Result<ApiRequest> {
    validate_node(node)?;
    let mut p = Params::new();
    if let Some(c) = content {
        check_content("content", c)?;
        p.str("content", c);
    }
    if enabled_only {
        p.bool("enabled", true);
    }
    Ok(node_get("/nodes/{node}/storage", &[("node", node)], p))
}

/// `GET /nodes/{node}/storage/{storage}/status`.
pub fn storage_status_request(node: &str, storage: &str) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_storage("storage", storage)?;
    Ok(node_get(
        "/nodes/{node}/storage/{storage}/status",
        &[("node", node), ("storage", storage)],
        Params::new(),
    ))
}

/// The answer of `GET /nodes/{node}/storage/{storage}/status` (the schema promises no field, so
/// every one is optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StorageStatus {
    /// The plugin type.
    #[serde(rename = "type", default)]
    pub storage_type: Option<String>,
    /// Allowed content types, comma-separated.
    #[serde(default)]
    pub content: String,
    /// Enabled.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enabled: Option<bool>,
    /// Active (accessible).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub active: Option<bool>,
    /// Size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total: Option<u64>,
    /// Available bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub avail: Option<u64>,
}

/// `GET /nodes/{node}/storage/{storage}/content[?content=iso]`.
pub fn storage_content_request(
    node: &str,
    storage: &str,
    content: Option<&str>,
    vmid: Option<u32>,
) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_storage("storage", storage)?;
    let mut p = Params::new();
    if let Some(c) = content {
        check_content("content", c)?;
        if c.contains(',') {
            return Err(PveError::invalid_input(
                "content",
                "takes a single content type",
            ));
        }
        p.str("content", c);
    }
    if let Some(v) = vmid {
        validate_vmid("vmid", v)?;
        p.int("vmid", i64::from(v));
    }
    Ok(node_get(
        "/nodes/{node}/storage/{storage}/content",
        &[("node", node), ("storage", storage)],
        p,
    ))
}

/// `GET /nodes/{node}/network[?type=...]`.
pub fn network_request(node: &str, filter: Option<NetworkTypeFilter>) -> Result<ApiRequest> {
    validate_node(node)?;
    let mut p = Params::new();
    if let Some(f) = filter {
        p.str("type", f.as_str());
    }
    Ok(node_get("/nodes/{node}/network", &[("node", node)], p))
}

impl PveClient {
    /// `GET /nodes`: the cluster's nodes.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.call(&nodes_request()).await
    }

    /// `GET /nodes/{node}/status`.
    pub async fn node_status(&self, node: &str) -> Result<NodeStatus> {
        self.call(&node_status_request(node)?).await
    }

    /// `GET /nodes/{node}/storage`: storages visible on `node`, optionally only those allowing
    /// `content` (`images`, `iso`, ...) and only enabled ones.
    pub async fn storages(
        &self,
        node: &str,
        content: Option<&str>,
        enabled_only: bool,
    ) -> Result<Vec<StorageInfo>> {
        self.call(&storages_request(node, content, enabled_only)?)
            .await
    }

    /// `GET /nodes/{node}/storage/{storage}/status`: one storage on one node. Needs
    /// Datastore.Audit or Datastore.AllocateSpace on `/storage/<storage>`; Proxmox refuses it
    /// (403, naming both) otherwise, and answers that an unknown storage does not exist.
    pub async fn storage_status(&self, node: &str, storage: &str) -> Result<StorageStatus> {
        self.call(&storage_status_request(node, storage)?).await
    }

    /// `GET /nodes/{node}/storage/{storage}/content`: volumes (e.g. ISOs with `content = iso`).
    pub async fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: Option<&str>,
        vmid: Option<u32>,
    ) -> Result<Vec<StorageVolume>> {
        self.call(&storage_content_request(node, storage, content, vmid)?)
            .await
    }

    /// `GET /nodes/{node}/network`: interfaces, e.g. the bridges a NIC can use.
    pub async fn network(
        &self,
        node: &str,
        filter: Option<NetworkTypeFilter>,
    ) -> Result<Vec<NetworkInterface>> {
        self.call(&network_request(node, filter)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_node_and_storage_shapes_decode() {
        let nodes: Vec<NodeInfo> = serde_json::from_str(
            r#"[{"node":"pve","status":"online","cpu":0.0123,"maxcpu":8,"mem":"1234","maxmem":8000000000,"uptime":100,"level":"","ssl_fingerprint":"AA:BB","id":"node/pve","type":"node"},{"node":"pve2","status":"offline"}]"#,
        )
        .unwrap();
        assert_eq!(nodes[0].mem, Some(1234));
        assert_eq!(nodes[1].cpu, None);
        let storages: Vec<StorageInfo> = serde_json::from_str(
            r#"[{"storage":"local-lvm","type":"lvmthin","content":"rootdir,images","enabled":1,"active":1,"shared":0,"total":100,"used":10,"avail":90,"used_fraction":0.1},{"storage":"local","type":"dir","content":"iso,vztmpl,backup","enabled":"1","active":1,"shared":0}]"#,
        )
        .unwrap();
        assert!(storages[0].supports("images"));
        assert!(!storages[0].supports("iso"));
        assert_eq!(storages[1].enabled, Some(true));
    }

    #[test]
    fn content_filters_are_validated_before_sending() {
        assert!(storages_request("pve", Some("images"), true).is_ok());
        assert!(storages_request("pve", Some("images&x=1"), false).is_err());
        assert!(storage_content_request("pve", "local", Some("iso,images"), None).is_err());
        assert!(storage_content_request("pve", "local", Some("iso"), Some(5)).is_err());
        let r = storages_request("pve", Some("iso"), true).unwrap();
        assert_eq!(r.params.form_encode(), "content=iso&enabled=1");
    }
}
