//! `ProxmoxCluster`: a Proxmox VE cluster and how to reach it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::patterns;

/// A Proxmox VE cluster: its API endpoint, how to trust its certificate, and the Secret with the
/// credentials. MachineRequests in the same namespace refer to it by name (`spec.clusterRef`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pve-operator.dev",
    version = "v1alpha1",
    kind = "ProxmoxCluster",
    namespaced,
    shortname = "pvc",
    category = "pve",
    status = "ProxmoxClusterStatus",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "A Proxmox VE cluster that MachineRequests can be placed on. See `kubectl explain proxmoxcluster.spec`."
)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxClusterSpec {
    /// The API URL of any node, e.g. `https://pve1.example.com:8006/api2/json` (the
    /// `/api2/json` suffix is optional).
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https'").message("endpoint must be an https:// URL, e.g. https://pve1.example.com:8006/api2/json"))]
    pub endpoint: String,
    /// How to trust the endpoint's TLS certificate. Without any setting, the system's trusted
    /// roots are used.
    #[serde(default)]
    pub tls: TlsSettings,
    /// The Secret (in this namespace) with the credentials: a `config.yaml` key in the
    /// `proxmox:` format (`tokenID`/`tokenSecret` or `username`/`password`/`realm`), or those keys
    /// directly.
    pub credentials_ref: SecretRef,
    /// The VMIDs the controller may allocate on this cluster; any free VMID when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid_range: Option<VmidRange>,
}

/// TLS trust settings. The CA bundle or the pinned fingerprint is the recommended way to trust a
/// self-signed Proxmox node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("!(self.insecureSkipVerify && (has(self.caBundle) || has(self.fingerprint)))").message("insecureSkipVerify cannot be combined with caBundle or fingerprint"))]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// PEM-encoded CA certificates that sign the node's certificate (for Proxmox's own CA, the
    /// content of `/etc/pve/pve-root-ca.pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub ca_bundle: Option<String>,
    /// The SHA-256 fingerprint of the node's certificate, colon-separated hex as Proxmox shows it
    /// (Datacenter > node > System > Certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 95), pattern(patterns::SHA256_FINGERPRINT))]
    pub fingerprint: Option<String>,
    /// Do not verify the certificate at all. Works, but anyone on the path can read the token; the
    /// controller warns.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: String,
}

/// A range of VMIDs, both ends included.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("vmidRange.min must not exceed vmidRange.max"))]
pub struct VmidRange {
    /// The lowest VMID.
    #[schemars(range(min = 100, max = 999999999))]
    pub min: u32,
    /// The highest VMID.
    #[schemars(range(min = 100, max = 999999999))]
    pub max: u32,
}

/// Observed state of a ProxmoxCluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxClusterStatus {
    /// The Proxmox VE version the endpoint reports, e.g. `8.4.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The cluster's nodes and whether they are online.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
    /// The generation of the spec that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// CredentialsValid, PrivilegesSufficient, Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One node of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Whether the node is online.
    pub online: bool,
}
