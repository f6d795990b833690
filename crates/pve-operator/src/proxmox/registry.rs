//! The runtimes of the Proxmox clusters ([`ClusterRuntime`]), one per set of credentials: the
//! controller's default connection (`--config`) and one per ProxmoxIdentity. A MachineRequest
//! reaches one through its ProxmoxCluster, which names an identity (docs/design.md "Tenancy"); the
//! registry checks that the identity allows the request's namespace and that the cluster only
//! narrows the identity, and hands out the runtime with the [`Policy`] (allow-lists) that applies
//! to the request.
//!
//! Credentials come only from a Secret in the controller's own namespace named by an identity
//! (or from the `--config` file). The endpoint they are sent to is the Secret's own `url`: no
//! tenant-writable object can change it, nor the TLS trust.

mod errors;
mod runtime;
mod settings;

pub use errors::{ConnectionError, IdentityError};
pub use runtime::{ClusterRuntime, IdentityKey, Intervals};
pub use settings::raw_config_from_secret;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use pve_client::PveConfig;
use pve_operator_api::{ProxmoxCluster, ProxmoxIdentity};

use super::Trigger;
use crate::tenancy::NamespaceRule;
use crate::tenancy::policy::{Policy, Source, check_narrowing};
use crate::tenancy::secrets::SecretCache;
use settings::{Unresolved, resolve_identity};

/// What a request gets from the registry: the connection and the allow-lists that apply.
pub struct Binding {
    /// The connection.
    pub connection: Arc<ClusterRuntime>,
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
    /// ProxmoxImages (the requests that boot or import one look them up here).
    pub images: Store<pve_operator_api::ProxmoxImage>,
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
    connections: Mutex<HashMap<IdentityKey, Arc<ClusterRuntime>>>,
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
    ) -> Result<Arc<ClusterRuntime>, IdentityError> {
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
    pub fn connections(&self) -> Vec<Arc<ClusterRuntime>> {
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
    ) -> Result<Arc<ClusterRuntime>, ConnectionError> {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = connections.get(&key)
            && existing.uses(config)
        {
            return Ok(existing.clone());
        }
        let connection = ClusterRuntime::open(key.clone(), config, &self.trigger, self.intervals)
            .map_err(|source| ConnectionError::Settings {
            identity: key.clone(),
            source,
        })?;
        let connection = Arc::new(connection);
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
