//! Connections to Proxmox clusters: the controller's default one (`--config`) and one per
//! ProxmoxCluster, built from its spec and its credentials Secret, rebuilt when either changes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use pve_client::config::RawProxmoxConfig;
use pve_client::{PveClient, PveConfig};
use pve_operator_api::{ProxmoxCluster, VmidRange};

use super::{Inventory, TaskTracker, Trigger, VmidAllocator};

/// Which Proxmox cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterKey {
    /// The controller's default connection.
    Default,
    /// A ProxmoxCluster object.
    Named {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterKey::Default => write!(f, "the default Proxmox connection"),
            ClusterKey::Named { namespace, name } => write!(f, "ProxmoxCluster {namespace}/{name}"),
        }
    }
}

/// Why a connection could not be made. The messages say what to fix; they never contain a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No clusterRef and no `--config`.
    #[error(
        "spec.clusterRef is not set and the controller has no default Proxmox connection (--config); set spec.clusterRef to a ProxmoxCluster"
    )]
    NoDefault,
    /// The ProxmoxCluster does not exist.
    #[error("ProxmoxCluster {namespace}/{name} not found; create it or fix spec.clusterRef")]
    ClusterNotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// The credentials Secret is missing or unusable.
    #[error("credentials Secret {namespace}/{name}: {problem}")]
    Credentials {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The resolved settings are invalid (pve-client says which key).
    #[error("Proxmox connection settings of {cluster}: {source}")]
    Settings {
        /// Which cluster.
        cluster: ClusterKey,
        /// pve-client's error, naming the key.
        source: pve_client::PveError,
    },
    /// The ProxmoxCluster lives in a namespace whose Secrets the controller is not allowed to
    /// read (`--credentials-namespace`).
    /// The message names no other namespace: it lands in this namespace's status, which other
    /// tenants' namespaces are none of its business.
    #[error(
        "ProxmoxCluster {namespace}/{name}: the controller does not read credentials Secrets in namespace \"{namespace}\"; its administrator can add it to --credentials-namespace (the Helm chart's credentialsNamespaces), or create the ProxmoxCluster, its Secret and its MachineRequests in a namespace it serves"
    )]
    CredentialsNamespaceNotServed {
        /// The ProxmoxCluster's namespace.
        namespace: String,
        /// The ProxmoxCluster's name.
        name: String,
    },
    /// Reading from Kubernetes failed.
    #[error("reading from Kubernetes failed: {0}")]
    Kube(#[from] kube::Error),
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

/// Everything the controller keeps for one Proxmox cluster.
pub struct Connection {
    /// Which cluster this is.
    pub key: ClusterKey,
    /// The API client (one connection pool, bounded concurrency).
    pub pve: PveClient,
    /// The shared inventory.
    pub inventory: Inventory,
    /// The shared task tracker.
    pub tasks: TaskTracker,
    /// The VMID allocator.
    pub vmids: VmidAllocator,
    /// The VMIDs the controller may use here.
    pub vmid_range: Option<VmidRange>,
    /// The credentials' effective privileges, read at most once a minute per path.
    pub permissions: crate::privileges::PermissionCache,
    /// The VMs placed recently, which the inventory may not show yet.
    pub placements: super::placements::RecentPlacements,
    fingerprint: u64,
}

/// Connections by cluster, created on first use.
pub struct ClusterRegistry {
    default: Option<PveConfig>,
    kube: Client,
    trigger: Trigger,
    intervals: Intervals,
    /// The namespaces whose Secrets may be read as credentials; `None`: every watched one.
    credentials_namespaces: Option<BTreeSet<String>>,
    connections: Mutex<HashMap<ClusterKey, Arc<Connection>>>,
}

impl ClusterRegistry {
    /// A registry with an optional default connection.
    pub fn new(
        default: Option<PveConfig>,
        kube: Client,
        trigger: Trigger,
        intervals: Intervals,
    ) -> Self {
        Self {
            default,
            kube,
            trigger,
            intervals,
            credentials_namespaces: None,
            connections: Mutex::default(),
        }
    }

    /// Reads ProxmoxCluster credentials only from Secrets in these namespaces; a ProxmoxCluster
    /// elsewhere gets [`ConnectionError::CredentialsNamespaceNotServed`] without a Secret read
    /// (which its RBAC would refuse anyway).
    pub fn with_credentials_namespaces(mut self, namespaces: BTreeSet<String>) -> Self {
        self.credentials_namespaces = Some(namespaces);
        self
    }

    /// The connection for a MachineRequest in `namespace` with an optional clusterRef name.
    pub async fn connection(
        &self,
        namespace: &str,
        cluster_ref: Option<&str>,
    ) -> Result<Arc<Connection>, ConnectionError> {
        let (key, config, range) = match cluster_ref {
            None => {
                let config = self.default.clone().ok_or(ConnectionError::NoDefault)?;
                (ClusterKey::Default, config, None)
            }
            Some(name) => {
                let (config, range) = self.resolve_named(namespace, name).await?;
                let key = ClusterKey::Named {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                };
                (key, config, range)
            }
        };
        let fingerprint = fingerprint(&config, range);
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = connections.get(&key)
            && existing.fingerprint == fingerprint
        {
            return Ok(existing.clone());
        }
        let pve = PveClient::new(&config).map_err(|source| ConnectionError::Settings {
            cluster: key.clone(),
            source,
        })?;
        let connection = Arc::new(Connection {
            key: key.clone(),
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
            pve,
            vmids: VmidAllocator::default(),
            vmid_range: range,
            permissions: crate::privileges::PermissionCache::new(
                &config,
                crate::privileges::PERMISSION_CACHE_TTL,
            ),
            // Two inventory reads: by then a placed VM has started and is read back.
            placements: super::placements::RecentPlacements::new(self.intervals.inventory * 2),
            fingerprint,
        });
        tracing::info!(cluster = %key, url = %config.url, "connected to Proxmox");
        tokio::spawn(crate::privileges::log_warnings(connection.clone()));
        connections.insert(key, connection.clone());
        Ok(connection)
    }

    /// Every live connection (for status and metrics).
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.values().cloned().collect()
    }

    async fn resolve_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(PveConfig, Option<VmidRange>), ConnectionError> {
        let clusters: Api<ProxmoxCluster> = Api::namespaced(self.kube.clone(), namespace);
        let cluster =
            clusters
                .get_opt(name)
                .await?
                .ok_or_else(|| ConnectionError::ClusterNotFound {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })?;
        if let Some(allowed) = &self.credentials_namespaces
            && !allowed.contains(namespace)
        {
            return Err(ConnectionError::CredentialsNamespaceNotServed {
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        let secrets: Api<Secret> = Api::namespaced(self.kube.clone(), namespace);
        let secret_name = &cluster.spec.credentials_ref.name;
        let credentials_error = |problem: String| ConnectionError::Credentials {
            namespace: namespace.to_string(),
            name: secret_name.clone(),
            problem,
        };
        let secret = secrets.get_opt(secret_name).await?.ok_or_else(|| {
            credentials_error(
                "not found; create it (see ProxmoxCluster spec.credentialsRef)".into(),
            )
        })?;
        let raw = raw_config_from_secret(&secret).map_err(credentials_error)?;
        let config = overlay_cluster_spec(raw, &cluster)
            .resolve()
            .map_err(|source| ConnectionError::Settings {
                cluster: ClusterKey::Named {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                },
                source,
            })?;
        Ok((config, cluster.spec.vmid_range))
    }
}

/// The credentials of a Secret: a `config.yaml` key in the source documents' `proxmox:` format,
/// or the keys `tokenID`/`tokenSecret` or `username`/`password`/`realm` directly.
pub fn raw_config_from_secret(secret: &Secret) -> Result<RawProxmoxConfig, String> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, String> {
        data.get(key)
            .map(|v| {
                String::from_utf8(v.0.clone()).map_err(|_| format!("key {key} is not UTF-8 text"))
            })
            .transpose()
    };
    if let Some(doc) = text("config.yaml")? {
        return RawProxmoxConfig::from_yaml_str(&doc)
            .map_err(|e| format!("key config.yaml is not a valid proxmox: config: {e}"));
    }
    let raw = RawProxmoxConfig {
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
    Ok(raw)
}

/// The ProxmoxCluster's endpoint and TLS settings win over whatever the Secret says.
fn overlay_cluster_spec(mut raw: RawProxmoxConfig, cluster: &ProxmoxCluster) -> RawProxmoxConfig {
    raw.url = Some(cluster.spec.endpoint.clone());
    let tls = &cluster.spec.tls;
    if tls.insecure_skip_verify {
        raw.insecure_skip_verify = Some(true);
    }
    if let Some(ca) = &tls.ca_bundle {
        raw.ca_bundle = Some(ca.clone());
    }
    if let Some(fingerprint) = &tls.fingerprint {
        raw.fingerprint = Some(fingerprint.clone());
    }
    raw
}

/// A hash of the settings, to notice changes without keeping or comparing secrets in clear.
fn fingerprint(config: &PveConfig, range: Option<VmidRange>) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{config:?}").hash(&mut hasher);
    // Debug redacts secrets, so a rotated secret is noticed by hashing it here (the hash stays
    // in memory and is never printed).
    match &config.credentials {
        pve_client::Credentials::Token(token) => token.secret.expose().hash(&mut hasher),
        pve_client::Credentials::Password { password, .. } => password.expose().hash(&mut hasher),
    }
    range.map(|r| (r.min, r.max)).hash(&mut hasher);
    hasher.finish()
}
