//! `/cluster/resources` and `/cluster/nextid`.

use serde::Deserialize;

use super::validate_vmid;
use crate::client::PveClient;
use crate::de;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};

/// The `type` filter of `/cluster/resources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// Guests (QEMU and LXC).
    Vm,
    /// Storages (one entry per node).
    Storage,
    /// Nodes.
    Node,
    /// SDN zones.
    Sdn,
}

impl ResourceType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Vm => "vm",
            ResourceType::Storage => "storage",
            ResourceType::Node => "node",
            ResourceType::Sdn => "sdn",
        }
    }
}

/// An entry of `/cluster/resources`. Fields depend on `type`; a VM that is not yet in the RRD
/// cache has only `id`, `vmid`, `node`, `type` and `status: unknown`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterResource {
    /// `qemu/100`, `node/pve`, `storage/pve/local-lvm`, `/pool/p`, `sdn/pve/localnetwork`.
    pub id: String,
    /// `qemu`, `lxc`, `node`, `storage`, `pool`, `sdn`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The node.
    #[serde(default)]
    pub node: Option<String>,
    /// The VMID (guests).
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    /// The guest or node name.
    #[serde(default)]
    pub name: Option<String>,
    /// `running`/`stopped`/`unknown` (guests), `online`/`offline` (nodes), `available` (storage).
    #[serde(default)]
    pub status: Option<String>,
    /// Tags, `;`-separated.
    #[serde(default)]
    pub tags: Option<String>,
    /// The config lock, if any.
    #[serde(default)]
    pub lock: Option<String>,
    /// The pool.
    #[serde(default)]
    pub pool: Option<String>,
    /// Whether the guest is a template.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    /// The storage ID (storage entries).
    #[serde(default)]
    pub storage: Option<String>,
    /// Allowed storage content (storage entries).
    #[serde(default)]
    pub content: Option<String>,
    /// Storage plugin type.
    #[serde(default)]
    pub plugintype: Option<String>,
    /// Shared storage.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub shared: Option<bool>,
    /// CPU utilisation.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub maxcpu: Option<f64>,
    /// Used memory.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    /// Memory.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Used disk.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub disk: Option<u64>,
    /// Disk size.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    /// Uptime.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    /// HA state.
    #[serde(default)]
    pub hastate: Option<String>,
}

impl ClusterResource {
    /// The tags, split at `;`, `,` or whitespace.
    pub fn tag_list(&self) -> Vec<&str> {
        self.tags
            .as_deref()
            .unwrap_or_default()
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether the resource carries `tag` (exact match).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tag_list().contains(&tag)
    }

    /// Whether this is a QEMU guest.
    pub fn is_qemu(&self) -> bool {
        self.resource_type == "qemu"
    }
}

/// `GET /cluster/resources[?type=...]`.
pub fn resources_request(kind: Option<ResourceType>) -> ApiRequest {
    let mut p = Params::new();
    if let Some(k) = kind {
        p.str("type", k.as_str());
    }
    ApiRequest::new(Method::Get, "/cluster/resources", &[], p)
}

/// `GET /cluster/nextid[?vmid=N]`.
pub fn nextid_request(vmid: Option<u32>) -> Result<ApiRequest> {
    let mut p = Params::new();
    if let Some(v) = vmid {
        validate_vmid("vmid", v)?;
        p.int("vmid", i64::from(v));
    }
    Ok(ApiRequest::new(Method::Get, "/cluster/nextid", &[], p))
}

#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct NextId(#[serde(deserialize_with = "de::u32")] pub(crate) u32);

impl PveClient {
    /// `GET /cluster/resources`: the whole cluster inventory in one call.
    pub async fn cluster_resources(
        &self,
        kind: Option<ResourceType>,
    ) -> Result<Vec<ClusterResource>> {
        self.call(&resources_request(kind)).await
    }

    /// `GET /cluster/nextid`: a free VMID (the server answers a string such as `"100"`).
    /// It is not reserved: a concurrent create may take it first.
    pub async fn next_vmid(&self) -> Result<u32> {
        let NextId(id) = self.call(&nextid_request(None)?).await?;
        Ok(id)
    }

    /// `GET /cluster/nextid?vmid=N`: whether `vmid` is free right now.
    pub async fn vmid_is_free(&self, vmid: u32) -> Result<bool> {
        match self.call::<NextId>(&nextid_request(Some(vmid))?).await {
            Ok(_) => Ok(true),
            Err(PveError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_of_every_kind_decode() {
        let r: Vec<ClusterResource> = serde_json::from_str(
            r#"[
            {"id":"qemu/100","vmid":100,"node":"pve","type":"qemu","status":"running","name":"web","maxcpu":2,"cpu":0.01,"mem":123,"maxmem":2147483648,"template":0,"tags":"pve-op;uid-1234","uptime":5},
            {"id":"qemu/101","vmid":"101","node":"pve","type":"qemu","status":"unknown"},
            {"id":"node/pve","node":"pve","type":"node","status":"online","level":"","cgroup-mode":2},
            {"id":"storage/pve/local-lvm","storage":"local-lvm","node":"pve","type":"storage","plugintype":"lvmthin","status":"available","shared":0,"content":"images,rootdir","disk":1,"maxdisk":2},
            {"id":"/pool/p","pool":"p","type":"pool"},
            {"id":"sdn/pve/localnetwork","sdn":"localnetwork","node":"pve","type":"sdn","status":"ok"}
        ]"#,
        )
        .unwrap();
        assert_eq!(r[0].tag_list(), ["pve-op", "uid-1234"]);
        assert!(r[0].has_tag("uid-1234"));
        assert!(!r[0].has_tag("uid-12"));
        assert!(r[0].is_qemu());
        assert_eq!(r[1].vmid, Some(101));
        assert_eq!(r[3].shared, Some(false));
    }

    /// PVE 9.x (pve9-changes.md §4.4): SDN zones as `type: network` entries, `memhost` and
    /// pressure figures on guests, `host-arch` on non-x86 nodes, `ha` without `group` (9.1).
    #[test]
    fn resources_of_pve9_decode_and_network_entries_are_neither_guests_nor_nodes() {
        let r: Vec<ClusterResource> = serde_json::from_str(
            r#"[
            {"id":"qemu/100","vmid":100,"node":"pve","type":"qemu","status":"running","name":"web","maxcpu":2,"cpu":0.01,"mem":123,"memhost":456,"maxmem":2147483648,"template":0,"tags":"pve-op","uptime":5,"pressurecpusome":0.1,"pressurememoryfull":0},
            {"id":"node/pve","node":"pve","type":"node","status":"online","level":"","cgroup-mode":2,"host-arch":"aarch64"},
            {"id":"storage/pve/local","storage":"local","node":"pve","type":"storage","plugintype":"dir","status":"available","shared":0,"content":"iso,import","disk":1,"maxdisk":2},
            {"id":"network/pve/zone/localnetwork","type":"network","network-type":"zone","network":"localnetwork","node":"pve","status":"ok"},
            {"id":"network/pve/fabric/f1","type":"network","network-type":"fabric","network":"f1","protocol":"openfabric","node":"pve","status":"ok","zone-type":"evpn"}
        ]"#,
        )
        .expect("PVE 9 resources decode");
        assert_eq!(r.len(), 5);
        assert!(r[0].is_qemu());
        assert_eq!(r[0].mem, Some(123));
        assert_eq!(r[2].content.as_deref(), Some("iso,import"));
        assert!(
            r[3..]
                .iter()
                .all(|n| !n.is_qemu() && n.resource_type == "network")
        );
        assert_eq!(r[3].node.as_deref(), Some("pve"));
    }

    #[test]
    fn nextid_is_decoded_from_a_string() {
        let NextId(n) = serde_json::from_str(r#""100""#).unwrap();
        assert_eq!(n, 100);
        let NextId(n) = serde_json::from_str("101").unwrap();
        assert_eq!(n, 101);
        assert!(nextid_request(Some(50)).is_err());
    }
}
