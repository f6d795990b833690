//! `ProxmoxCluster`: a Proxmox VE cluster as one namespace uses it, through a ProxmoxIdentity.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::allowances::Allowances;
use crate::patterns;

/// A Proxmox VE cluster as one namespace uses it: the ProxmoxIdentity (created by the cluster
/// admin) whose endpoint and credentials it uses, and what its MachineRequests may use there,
/// within what the identity allows. MachineRequests in the same namespace refer to it by name
/// (`spec.clusterRef`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pve-operator.dev",
    version = "v1alpha1",
    kind = "ProxmoxCluster",
    namespaced,
    shortname = "pvc",
    category = "pve",
    status = "ProxmoxClusterStatus",
    printcolumn = r#"{"name":"Identity","type":"string","jsonPath":".spec.identityRef.name"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "A Proxmox VE cluster that MachineRequests can be placed on. See `kubectl explain proxmoxcluster.spec`."
)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxClusterSpec {
    /// The ProxmoxIdentity (cluster-scoped, created by the cluster admin) whose endpoint and
    /// credentials this cluster uses. It must allow this namespace (its
    /// `spec.allowedNamespaces`). Immutable: the requests' VMs live behind it.
    #[x_kube(validation = Rule::new("self == oldSelf").message("identityRef is immutable: the VMs of this cluster's requests live behind its identity"))]
    pub identity_ref: IdentityRef,
    /// Narrows what the identity allows, for the MachineRequests that use this cluster: each
    /// list may only name what the identity's own list allows (a cluster that names more is
    /// refused). Omitted lists narrow nothing.
    #[serde(default)]
    pub allowed: Allowances,
}

/// A reference to a cluster-scoped ProxmoxIdentity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IdentityRef {
    /// The ProxmoxIdentity's name.
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
    /// The endpoint of the cluster's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The Proxmox VE version the endpoint reports, e.g. `8.4.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The cluster's nodes and whether they are online.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
    /// The generation of the spec that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// IdentityAllowed, PrivilegesSufficient, Ready.
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
