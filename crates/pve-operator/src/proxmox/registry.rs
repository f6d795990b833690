//! Connections to Proxmox, one per set of credentials: the controller's default connection
//! (`--config`) and one per ProxmoxIdentity. A MachineRequest reaches one through its
//! ProxmoxCluster, which names an identity (DESIGN "Tenancy"); the registry checks that the
//! identity allows the request's namespace and that the cluster only narrows the identity, and
//! hands out the connection with the [`Policy`] (allow-lists) that applies to the request.
//!
//! Credentials come only from a Secret in the controller's own namespace named by an identity
//! (or from the `--config` file). The endpoint they are sent to is the Secret's own `url`: no
//! tenant-writable object can change it, nor the TLS trust.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use pve_client::config::RawProxmoxConfig;
use pve_client::{PveClient, PveConfig};
use pve_operator_api::{ProxmoxCluster, ProxmoxIdentity};

use super::{Inventory, TaskTracker, Trigger, VmidAllocator};
use crate::tenancy::NamespaceRule;
use crate::tenancy::policy::{Policy, Refusals, Source, check_narrowing};
use crate::tenancy::secrets::{SecretCache, SecretError};

/// Which credentials a connection uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKey {
    /// The controller's default connection (`--config`).
    Default,
    /// A ProxmoxIdentity, by name.
    Named(String),
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityKey::Default => write!(f, "the default Proxmox connection"),
            IdentityKey::Named(name) => write!(f, "ProxmoxIdentity {name:?}"),
        }
    }
}

/// Why a MachineRequest or a ProxmoxCluster cannot use a connection. The messages say what to
/// fix, name only the request's own objects and the identity it refers to, and never contain a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No clusterRef and no `--config`.
    #[error(
        "spec.clusterRef is not set and the controller has no default Proxmox connection (--config); set spec.clusterRef to a ProxmoxCluster"
    )]
    NoDefault,
    /// No clusterRef, and the default connection does not serve the namespace.
    #[error(
        "spec.clusterRef is not set, and the controller's default Proxmox connection does not serve namespace {namespace:?}; set spec.clusterRef to a ProxmoxCluster of this namespace whose ProxmoxIdentity allows it, or ask the controller's administrator to add {namespace:?} to --default-allowed-namespaces (Helm chart: proxmox.allowedNamespaces)"
    )]
    DefaultNotServed {
        /// The request's namespace.
        namespace: String,
    },
    /// The ProxmoxCluster does not exist.
    #[error("ProxmoxCluster {namespace}/{name} not found; create it or fix spec.clusterRef")]
    ClusterNotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// The ProxmoxCluster names an identity that does not exist.
    #[error(
        "ProxmoxCluster {namespace}/{cluster} refers to ProxmoxIdentity {identity:?} (spec.identityRef), which does not exist; ask the cluster administrator for an identity that allows namespace {namespace:?}"
    )]
    IdentityNotFound {
        /// The cluster's namespace.
        namespace: String,
        /// The cluster's name.
        cluster: String,
        /// The identity it names.
        identity: String,
    },
    /// The identity does not allow the namespace.
    #[error(
        "ProxmoxIdentity {identity:?} does not allow namespace {namespace:?} (its spec.allowedNamespaces), so ProxmoxCluster {namespace}/{cluster} cannot use it; ask the cluster administrator to allow the namespace, or refer to another identity"
    )]
    NamespaceNotAllowed {
        /// The identity.
        identity: String,
        /// The namespace refused.
        namespace: String,
        /// The cluster that refers to the identity.
        cluster: String,
    },
    /// The ProxmoxCluster's allowances name more than its identity allows.
    #[error(
        "ProxmoxCluster {namespace}/{cluster} may only narrow what its identity allows: {refusals}"
    )]
    WidensIdentity {
        /// The cluster's namespace.
        namespace: String,
        /// The cluster's name.
        cluster: String,
        /// What it names beyond the identity.
        refusals: Refusals,
    },
    /// The identity's Secret is missing or unusable (its status says why).
    #[error(
        "ProxmoxIdentity {identity:?} cannot be used now: its credentials are missing or invalid; its administrator sees why in `kubectl get proxmoxidentity {identity} -o yaml`"
    )]
    IdentityNotReady {
        /// The identity.
        identity: String,
    },
    /// The settings are invalid (pve-client says which key).
    #[error("Proxmox connection settings of {identity}: {source}")]
    Settings {
        /// Which credentials.
        identity: IdentityKey,
        /// pve-client's error, naming the key.
        source: pve_client::PveError,
    },
    /// Reading from Kubernetes failed.
    #[error("reading from Kubernetes failed: {0}")]
    Kube(#[from] kube::Error),
}

impl ConnectionError {
    /// The condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectionError::NoDefault | ConnectionError::ClusterNotFound { .. } => {
                "ClusterUnavailable"
            }
            ConnectionError::DefaultNotServed { .. }
            | ConnectionError::NamespaceNotAllowed { .. } => "NamespaceNotAllowed",
            ConnectionError::IdentityNotFound { .. } => "IdentityNotFound",
            ConnectionError::WidensIdentity { .. } => "WidensIdentity",
            ConnectionError::IdentityNotReady { .. } => "IdentityNotReady",
            ConnectionError::Settings { .. } => "InvalidConnectionSettings",
            ConnectionError::Kube(_) => "KubernetesUnavailable",
        }
    }

    /// Whether the request's namespace is refused by the identity (or the default connection):
    /// a request that never got a VM there may then be released without a Proxmox call.
    pub fn is_namespace_refusal(&self) -> bool {
        matches!(
            self,
            ConnectionError::DefaultNotServed { .. } | ConnectionError::NamespaceNotAllowed { .. }
        )
    }
}

/// Why an identity's credentials cannot be used: for the identity's own status, which the
/// admin reads (tenants see [`ConnectionError::IdentityNotReady`]).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The Secret does not exist.
    #[error(
        "Secret {namespace}/{name} (spec.secretRef) not found; create it in the controller's namespace with a config.yaml key in the proxmox: format"
    )]
    SecretNotFound {
        /// Its namespace (the controller's).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Secret could not be read.
    #[error(transparent)]
    SecretUnreadable(#[from] SecretError),
    /// The Secret's content is unusable.
    #[error("Secret {namespace}/{name}: {problem}")]
    SecretInvalid {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The identity's endpoint and the Secret's url differ.
    #[error(
        "spec.endpoint {endpoint} differs from the url of Secret {namespace}/{name} ({url}); the credentials are sent only to the Secret's url and this identity is refused until both agree"
    )]
    EndpointMismatch {
        /// The identity's endpoint, normalised.
        endpoint: String,
        /// The Secret's url, normalised.
        url: String,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// The identity's endpoint is no URL the controller accepts.
    #[error(
        "spec.endpoint cannot be used ({source}); the credentials are used only with the url of the identity's Secret, and this identity is refused until spec.endpoint is that url or removed"
    )]
    EndpointInvalid {
        /// pve-client's error (it never repeats a URL with credentials in it).
        source: pve_client::PveError,
    },
    /// The settings are invalid (pve-client says which key).
    #[error("Secret {namespace}/{name}: {source}")]
    Settings {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// pve-client's error, naming the key.
        source: pve_client::PveError,
    },
}

/// Why an identity's Secret and `spec.endpoint` give no settings.
#[derive(Debug)]
enum Unresolved {
    /// The Secret's settings are invalid.
    Settings(pve_client::PveError),
    /// `spec.endpoint` is no URL the controller accepts.
    EndpointInvalid(pve_client::PveError),
    /// Both are valid and differ.
    Mismatch { endpoint: String, url: String },
}

/// The settings of an identity: its Secret's, whose `url` is authoritative. A Secret without a
/// `url` takes `spec.endpoint`; a `spec.endpoint` that is set must be a valid endpoint equal to
/// the Secret's `url`. A problem of `spec.endpoint` is reported as the endpoint's, never as the
/// Secret's `url`.
fn resolve_identity(
    raw: RawProxmoxConfig,
    endpoint: Option<&str>,
) -> Result<PveConfig, Unresolved> {
    let Some(endpoint) = endpoint else {
        return raw.resolve().map_err(Unresolved::Settings);
    };
    let mut stated = raw.clone();
    stated.url = Some(endpoint.to_string());
    // What is wrong with the url of `stated` is the endpoint's; anything else, the Secret's.
    let endpoints = |error: pve_client::PveError| match &error {
        pve_client::PveError::Config { key, .. } if key == "url" => {
            Unresolved::EndpointInvalid(error)
        }
        _ => Unresolved::Settings(error),
    };
    if raw.url.as_deref().is_none_or(|u| u.trim().is_empty()) {
        // A Secret with only credentials: the identity's endpoint is where they go.
        return stated.resolve().map_err(endpoints);
    }
    let config = raw.resolve().map_err(Unresolved::Settings)?;
    let stated = stated.resolve().map_err(endpoints)?;
    if stated.url != config.url {
        return Err(Unresolved::Mismatch {
            endpoint: stated.url,
            url: config.url,
        });
    }
    Ok(config)
}

/// Timers of the per-cluster machinery.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// How often the shared inventory is read.
    pub inventory: Duration,
    /// How often in-flight tasks are polled.
    pub tasks: Duration,
    /// At most this many of the controller's tasks run at once on one node.
    pub max_tasks_per_node: usize,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            inventory: Duration::from_secs(10),
            tasks: Duration::from_millis(500),
            max_tasks_per_node: 8,
        }
    }
}

/// Everything the controller keeps for one set of credentials (one Proxmox cluster as they see
/// it).
pub struct Connection {
    /// Which credentials these are.
    pub key: IdentityKey,
    /// The API client (one connection pool, bounded concurrency).
    pub pve: PveClient,
    /// The endpoint, normalised (`https://host:8006/api2/json`).
    pub endpoint: String,
    /// The shared inventory.
    pub inventory: Inventory,
    /// The shared task tracker.
    pub tasks: TaskTracker,
    /// The VMID allocator.
    pub vmids: VmidAllocator,
    /// The credentials' effective privileges, read at most once a minute per path.
    pub permissions: crate::privileges::PermissionCache,
    /// The VMs placed recently, which the inventory may not show yet.
    pub placements: super::placements::RecentPlacements,
    /// Short-lived reads of nodes' storages, bridges and ISOs, for checks before a create.
    pub node_facts: super::node_facts::NodeFacts,
    /// The Proxmox VE release, for the privilege rows that differ between releases.
    pub release: super::release::ReleaseCache,
    fingerprint: u64,
}

/// What a request gets from the registry: the connection and the allow-lists that apply.
pub struct Binding {
    /// The connection.
    pub connection: Arc<Connection>,
    /// The identity's and the cluster's allow-lists.
    pub policy: Policy,
}

/// What the binding is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Creating and keeping a VM: every rule applies.
    Apply,
    /// Removing (or releasing) the request's own VM after its namespace lost access: the
    /// namespace rule and the narrowing rule are not checked, the marker rules still are.
    Cleanup,
}

/// The controller's default connection and the namespaces it serves.
#[derive(Debug, Clone)]
pub struct DefaultIdentity {
    /// The `--config` connection.
    pub config: PveConfig,
    /// `--default-allowed-namespaces`.
    pub namespaces: NamespaceRule,
}

/// The Kubernetes objects requests are resolved through, kept current by watches (a miss is
/// read directly, so a just-created object is never reported missing).
#[derive(Clone)]
pub struct Directory {
    /// ProxmoxClusters.
    pub clusters: Store<ProxmoxCluster>,
    /// ProxmoxIdentities.
    pub identities: Store<ProxmoxIdentity>,
    /// Namespaces' metadata (for `allowedNamespaces.selector`).
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

/// Connections by credentials, created on first use.
pub struct ClusterRegistry {
    default: Option<DefaultIdentity>,
    kube: Client,
    trigger: Trigger,
    intervals: Intervals,
    directory: Directory,
    secrets: Arc<SecretCache>,
    identity_labels: BTreeMap<String, String>,
    connections: Mutex<HashMap<IdentityKey, Arc<Connection>>>,
}

impl ClusterRegistry {
    /// A registry with an optional default connection; identities' Secrets are read through
    /// `secrets`, objects through `directory`.
    pub fn new(
        default: Option<DefaultIdentity>,
        kube: Client,
        trigger: Trigger,
        intervals: Intervals,
        directory: Directory,
        secrets: Arc<SecretCache>,
    ) -> Self {
        Self {
            default,
            kube,
            trigger,
            intervals,
            directory,
            secrets,
            identity_labels: BTreeMap::new(),
            connections: Mutex::default(),
        }
    }

    /// Serves only the identities that carry these labels (`--identity-selector`); the others
    /// count as missing.
    pub fn with_identity_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.identity_labels = labels;
        self
    }

    /// The directory the registry resolves through.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The identities' Secrets.
    pub fn secrets(&self) -> &SecretCache {
        &self.secrets
    }

    /// The connection and the allow-lists for a MachineRequest in `namespace` with an optional
    /// clusterRef name (or for that ProxmoxCluster itself).
    pub async fn binding(
        &self,
        namespace: &str,
        cluster_ref: Option<&str>,
        purpose: Purpose,
    ) -> Result<Binding, ConnectionError> {
        let Some(cluster_name) = cluster_ref else {
            let default = self.default.as_ref().ok_or(ConnectionError::NoDefault)?;
            if purpose == Purpose::Apply
                && !self
                    .namespace_allowed(&default.namespaces, namespace)
                    .await?
            {
                return Err(ConnectionError::DefaultNotServed {
                    namespace: namespace.to_string(),
                });
            }
            let connection = self.connect(IdentityKey::Default, &default.config)?;
            return Ok(Binding {
                connection,
                policy: Policy::unrestricted(),
            });
        };
        let cluster = self.cluster(namespace, cluster_name).await?;
        let identity_name = cluster.spec.identity_ref.name.clone();
        let identity = self.identity(&identity_name).await?.ok_or_else(|| {
            ConnectionError::IdentityNotFound {
                namespace: namespace.to_string(),
                cluster: cluster_name.to_string(),
                identity: identity_name.clone(),
            }
        })?;
        let source = Source(format!("ProxmoxIdentity {identity_name:?}"));
        if purpose == Purpose::Apply {
            let rule = NamespaceRule::Allowed(identity.spec.allowed_namespaces.clone());
            if !self.namespace_allowed(&rule, namespace).await? {
                return Err(ConnectionError::NamespaceNotAllowed {
                    identity: identity_name,
                    namespace: namespace.to_string(),
                    cluster: cluster_name.to_string(),
                });
            }
            check_narrowing(&identity.spec.allowed, &cluster.spec.allowed, &source).map_err(
                |refusals| ConnectionError::WidensIdentity {
                    namespace: namespace.to_string(),
                    cluster: cluster_name.to_string(),
                    refusals,
                },
            )?;
        }
        let connection = match self.identity_connection(&identity).await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::debug!(identity = %identity_name, %error, "identity not usable");
                return Err(ConnectionError::IdentityNotReady {
                    identity: identity_name,
                });
            }
        };
        let policy = Policy::unrestricted()
            .with_layer(source, identity.spec.allowed.clone())
            .with_layer(
                Source(format!("ProxmoxCluster {cluster_name:?}")),
                cluster.spec.allowed.clone(),
            );
        Ok(Binding { connection, policy })
    }

    /// The connection of an identity, with the reason when its credentials cannot be used
    /// (for the identity's status).
    pub async fn identity_connection(
        &self,
        identity: &ProxmoxIdentity,
    ) -> Result<Arc<Connection>, IdentityError> {
        let name = identity.metadata.name.clone().unwrap_or_default();
        let config = self.identity_config(identity).await?;
        self.connect(IdentityKey::Named(name), &config)
            .map_err(|error| match error {
                ConnectionError::Settings { source, .. } => IdentityError::Settings {
                    namespace: self.secrets.namespace().to_string(),
                    name: identity.spec.secret_ref.name.clone(),
                    source,
                },
                other => IdentityError::SecretInvalid {
                    namespace: self.secrets.namespace().to_string(),
                    name: identity.spec.secret_ref.name.clone(),
                    problem: other.to_string(),
                },
            })
    }

    /// Every live connection (for status and metrics).
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.values().cloned().collect()
    }

    /// The settings of an identity: its Secret's, checked against the identity.
    async fn identity_config(
        &self,
        identity: &ProxmoxIdentity,
    ) -> Result<PveConfig, IdentityError> {
        let namespace = self.secrets.namespace().to_string();
        let name = identity.spec.secret_ref.name.clone();
        let secret =
            self.secrets
                .get(&name)
                .await?
                .ok_or_else(|| IdentityError::SecretNotFound {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })?;
        let invalid = |problem: String| IdentityError::SecretInvalid {
            namespace: namespace.clone(),
            name: name.clone(),
            problem,
        };
        let raw = raw_config_from_secret(&secret).map_err(invalid)?;
        resolve_identity(raw, identity.spec.endpoint.as_deref()).map_err(|problem| match problem {
            Unresolved::Settings(source) => IdentityError::Settings {
                namespace,
                name,
                source,
            },
            Unresolved::EndpointInvalid(source) => IdentityError::EndpointInvalid { source },
            Unresolved::Mismatch { endpoint, url } => IdentityError::EndpointMismatch {
                endpoint,
                url,
                namespace,
                name,
            },
        })
    }

    /// The connection for `config`, reusing the live one while the settings are unchanged.
    fn connect(
        &self,
        key: IdentityKey,
        config: &PveConfig,
    ) -> Result<Arc<Connection>, ConnectionError> {
        let fingerprint = fingerprint(config);
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = connections.get(&key)
            && existing.fingerprint == fingerprint
        {
            return Ok(existing.clone());
        }
        let pve = PveClient::new(config).map_err(|source| ConnectionError::Settings {
            identity: key.clone(),
            source,
        })?;
        let connection = Arc::new(Connection {
            key: key.clone(),
            endpoint: config.url.clone(),
            inventory: Inventory::spawn(
                pve.clone(),
                self.trigger.clone(),
                self.intervals.inventory,
            ),
            tasks: TaskTracker::spawn(
                pve.clone(),
                self.trigger.clone(),
                self.intervals.tasks,
                self.intervals.max_tasks_per_node,
            ),
            node_facts: super::node_facts::NodeFacts::new(pve.clone()),
            pve,
            vmids: VmidAllocator::default(),
            permissions: crate::privileges::PermissionCache::new(
                config,
                crate::privileges::PERMISSION_CACHE_TTL,
            ),
            // Two inventory reads: by then a placed VM has started and is read back.
            placements: super::placements::RecentPlacements::new(self.intervals.inventory * 2),
            release: super::release::ReleaseCache::default(),
            fingerprint,
        });
        tracing::info!(identity = %key, url = %config.url, "connected to Proxmox");
        tokio::spawn(crate::privileges::log_warnings(connection.clone()));
        connections.insert(key, connection.clone());
        Ok(connection)
    }

    async fn cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<ProxmoxCluster>, ConnectionError> {
        let key = ObjectRef::new(name).within(namespace);
        if let Some(cluster) = self.directory.clusters.get(&key) {
            return Ok(cluster);
        }
        let api: Api<ProxmoxCluster> = Api::namespaced(self.kube.clone(), namespace);
        api.get_opt(name)
            .await?
            .map(Arc::new)
            .ok_or_else(|| ConnectionError::ClusterNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
    }

    async fn identity(&self, name: &str) -> Result<Option<Arc<ProxmoxIdentity>>, ConnectionError> {
        if let Some(identity) = self.directory.identities.get(&ObjectRef::new(name)) {
            return Ok(Some(identity));
        }
        let api: Api<ProxmoxIdentity> = Api::all(self.kube.clone());
        let served = |identity: &ProxmoxIdentity| {
            let labels = identity.metadata.labels.clone().unwrap_or_default();
            self.identity_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        };
        Ok(api.get_opt(name).await?.filter(served).map(Arc::new))
    }

    async fn namespace_allowed(
        &self,
        rule: &NamespaceRule,
        namespace: &str,
    ) -> Result<bool, ConnectionError> {
        if !rule.needs_labels() || rule.allows(namespace, None) {
            return Ok(rule.allows(namespace, None));
        }
        let labels: Option<BTreeMap<String, String>> =
            match self.directory.namespaces.get(&ObjectRef::new(namespace)) {
                Some(meta) => Some(meta.metadata.labels.clone().unwrap_or_default()),
                None => {
                    let api: Api<Namespace> = Api::all(self.kube.clone());
                    api.get_metadata_opt(namespace)
                        .await?
                        .map(|meta| meta.metadata.labels.unwrap_or_default())
                }
            };
        Ok(rule.allows(namespace, labels.as_ref()))
    }
}

/// The credentials of an identity's Secret: a `config.yaml` key in the source documents'
/// `proxmox:` format, or the keys `url`, `tokenID`/`tokenSecret` or `username`/`password`/
/// `realm` directly. A Secret cannot name a file (`caBundleFile`): that would read the
/// controller's own filesystem.
pub fn raw_config_from_secret(secret: &Secret) -> Result<RawProxmoxConfig, String> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, String> {
        data.get(key)
            .map(|v| {
                String::from_utf8(v.0.clone()).map_err(|_| format!("key {key} is not UTF-8 text"))
            })
            .transpose()
    };
    let raw = if let Some(doc) = text("config.yaml")? {
        RawProxmoxConfig::from_yaml_str(&doc)
            .map_err(|e| format!("key config.yaml is not a valid proxmox: config: {e}"))?
    } else {
        let raw = RawProxmoxConfig {
            url: text("url")?,
            token_id: text("tokenID")?,
            token_secret: text("tokenSecret")?.map(Into::into),
            username: text("username")?,
            password: text("password")?.map(Into::into),
            realm: text("realm")?,
            ..RawProxmoxConfig::default()
        };
        if raw.token_id.is_none() && raw.username.is_none() {
            return Err("has none of the keys config.yaml, tokenID/tokenSecret or username/password; add one of them".into());
        }
        raw
    };
    if raw
        .ca_bundle_file
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty())
    {
        return Err("caBundleFile names a file on the controller's own filesystem, which a Secret may not do; put the PEM text itself in caBundle".into());
    }
    Ok(raw)
}

/// A hash of the settings, to notice changes without keeping or comparing secrets in clear.
fn fingerprint(config: &PveConfig) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{config:?}").hash(&mut hasher);
    // Debug redacts secrets, so a rotated secret is noticed by hashing it here (the hash stays
    // in memory and is never printed).
    match &config.credentials {
        pve_client::Credentials::Token(token) => token.secret.expose().hash(&mut hasher),
        pve_client::Credentials::Password { password, .. } => password.expose().hash(&mut hasher),
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_secret_cannot_name_a_file_on_the_controllers_filesystem() {
        let doc = "proxmox:\n  url: https://pve:8006\n  caBundleFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n  tokenID: a@pve!t\n  tokenSecret: s\n";
        let error = raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect_err("refused");
        assert!(
            error.contains("caBundleFile") && error.contains("caBundle"),
            "{error}"
        );
        assert!(
            !error.contains("/var/run"),
            "the path is not echoed: {error}"
        );
    }

    #[test]
    fn a_bad_spec_endpoint_is_the_endpoints_problem_and_never_echoes_a_password() {
        let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: op@pve!ctl\n  tokenSecret: 00000000-0000-0000-0000-000000000000\n";
        let raw = || raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect("valid");
        let config = resolve_identity(raw(), Some("https://pve:8006/api2/json")).expect("equal");
        assert_eq!(config.url, "https://pve:8006/api2/json");
        for endpoint in [
            "https://root:hunter2@pve:8006/api2/json",
            "https://pve:8006/api2/json%0d%0aX-Injected:%201",
        ] {
            let error = resolve_identity(raw(), Some(endpoint)).expect_err("refused");
            let Unresolved::EndpointInvalid(source) = error else {
                panic!("{endpoint}: {error:?}");
            };
            let text = IdentityError::EndpointInvalid { source }.to_string();
            assert!(text.starts_with("spec.endpoint cannot be used"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        let other = resolve_identity(raw(), Some("https://elsewhere:8006")).expect_err("differs");
        assert!(matches!(other, Unresolved::Mismatch { .. }), "{other:?}");
        // Without a url in the Secret the endpoint is the url, and a bad one is still its own.
        let bare = raw_config_from_secret(&secret(&[
            ("tokenID", "op@pve!ctl"),
            ("tokenSecret", "00000000-0000-0000-0000-000000000000"),
        ]))
        .expect("valid");
        let error =
            resolve_identity(bare, Some("https://root:hunter2@pve:8006")).expect_err("refused");
        assert!(matches!(error, Unresolved::EndpointInvalid(_)), "{error:?}");
        // A bad key of the Secret stays the Secret's.
        let bad_token = raw_config_from_secret(&secret(&[
            ("tokenID", "not-a-token"),
            ("tokenSecret", "00000000-0000-0000-0000-000000000000"),
        ]))
        .expect("readable");
        let error = resolve_identity(bad_token, Some("https://pve:8006")).expect_err("refused");
        assert!(matches!(error, Unresolved::Settings(_)), "{error:?}");
    }

    #[test]
    fn a_secret_gives_config_yaml_or_the_keys_themselves() {
        let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: a@pve!t\n  tokenSecret: s\n";
        let raw = raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect("valid");
        assert_eq!(raw.url.as_deref(), Some("https://pve:8006"));
        let keys = raw_config_from_secret(&secret(&[
            ("url", "https://pve:8006"),
            ("tokenID", "a@pve!t"),
            ("tokenSecret", "s"),
        ]))
        .expect("valid");
        assert_eq!(keys.token_id.as_deref(), Some("a@pve!t"));
        let none = raw_config_from_secret(&secret(&[("password", "x")])).expect_err("refused");
        assert!(none.contains("tokenID"), "{none}");
    }
}
