//! Why a MachineRequest or ProxmoxCluster gets no connection ([`ConnectionError`], which tenants
//! read), and why an identity's credentials cannot be used ([`IdentityError`], for the identity's
//! own status, which its administrator reads).

use crate::tenancy::policy::Refusals;
use crate::tenancy::secrets::SecretError;

use super::IdentityKey;

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
