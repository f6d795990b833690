//! `ProxmoxIdentity`: credentials for one Proxmox VE endpoint, created by the cluster admin, and
//! which namespaces may use them for what (the pattern of Cluster API's
//! `VSphereClusterIdentity` and `AWSClusterRoleIdentity`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::allowances::Allowances;
use crate::patterns;

/// Credentials for one Proxmox VE endpoint and the namespaces allowed to use them. Cluster-scoped
/// and meant to be created by the cluster admin: tenants refer to an identity from a
/// ProxmoxCluster in their namespace and can only narrow what it allows.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pve-operator.dev",
    version = "v1alpha1",
    kind = "ProxmoxIdentity",
    shortname = "pvi",
    category = "pve",
    status = "ProxmoxIdentityStatus",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "Proxmox VE credentials and who may use them for what. See `kubectl explain proxmoxidentity.spec`."
)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxIdentitySpec {
    /// The Secret, in the controller's own namespace, that holds the connection in the
    /// `proxmox:` format under `config.yaml` (`url`, `fingerprint`/`caBundle` or
    /// `insecureSkipVerify`, `tokenID`/`tokenSecret` or `username`/`password`/`realm`). Its `url`
    /// is the only endpoint these credentials are ever sent to. Files (`caBundleFile`) cannot be
    /// named there.
    pub secret_ref: IdentitySecretRef,
    /// The API URL these credentials are for, e.g. `https://pve1.example.com:8006/api2/json`.
    /// Optional: when set, it must equal the Secret's `url`, and the identity is refused (its
    /// credentials unused) when they differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https'").message("endpoint must be an https:// URL, e.g. https://pve1.example.com:8006/api2/json"))]
    pub endpoint: Option<String>,
    /// The namespaces whose ProxmoxClusters may use this identity. Omitted or empty: none.
    #[serde(default)]
    pub allowed_namespaces: AllowedNamespaces,
    /// What MachineRequests may use through this identity: templates, storages, bridges and
    /// VLANs, pools, nodes, VMID range. Omitted lists do not restrict; an empty list allows
    /// nothing.
    #[serde(default)]
    pub allowed: Allowances,
}

/// A Secret in the controller's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IdentitySecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: String,
}

/// Which namespaces may use an identity: those listed by name, and those whose labels match the
/// selector. Neither given: no namespace. `selector: {}` matches every namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNamespaces {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1024),
        inner(length(min = 1, max = 63), pattern(patterns::NAMESPACE_NAME))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub list: Vec<String>,
    /// Namespaces by label (`matchLabels`, `matchExpressions`). An empty selector (`{}`)
    /// matches every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Observed state of a ProxmoxIdentity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxIdentityStatus {
    /// The endpoint the credentials are used with (the Secret's `url`, normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The Proxmox VE version the endpoint reports, e.g. `8.4.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The generation of the spec that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// SecretValid, CredentialsValid, Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
