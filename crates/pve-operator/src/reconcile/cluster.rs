//! The ProxmoxCluster controller: connects with the referenced credentials and reports the
//! Proxmox version, the nodes, and whether the credentials work, in status; it follows changes
//! of the credentials Secret.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pve_operator_api::{NodeStatus, ProxmoxCluster, ProxmoxClusterStatus};
use serde_json::json;

use super::Context;
use super::status::FIELD_MANAGER;
use crate::proxmox::registry::ConnectionError;

/// How often a healthy cluster is checked again.
const RECHECK: Duration = Duration::from_secs(300);

/// Runs the ProxmoxCluster controller until `shutdown` completes.
pub async fn run(
    ctx: Arc<Context>,
    clusters: Api<ProxmoxCluster>,
    secrets: Api<Secret>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(clusters, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        .watches(
            secrets,
            watcher::Config::default(),
            move |secret: Secret| {
                let namespace = secret.namespace();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.namespace() == namespace && c.spec.credentials_ref.name == name)
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(30)),
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ProxmoxCluster reconcile failed");
            }
        })
        .await;
}

/// Why a ProxmoxCluster's status could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing ProxmoxCluster status: {0}")]
pub struct StatusError(#[from] kube::Error);

async fn reconcile(cluster: Arc<ProxmoxCluster>, ctx: Arc<Context>) -> Result<Action, StatusError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let generation = cluster.metadata.generation;
    let mut status = ProxmoxClusterStatus {
        observed_generation: generation,
        ..ProxmoxClusterStatus::default()
    };
    let previous = cluster.status.clone().unwrap_or_default();
    let mut condition = |type_: &str, ok: bool, reason: &str, message: String| {
        let value = if ok { "True" } else { "False" };
        let last_transition_time = previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == value)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
        status.conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time,
        });
    };
    let checked = match ctx.clusters.connection(&namespace, Some(&name)).await {
        Err(error @ (ConnectionError::Credentials { .. } | ConnectionError::Settings { .. })) => {
            condition(
                "CredentialsValid",
                false,
                "InvalidCredentials",
                error.to_string(),
            );
            Err(error.to_string())
        }
        Err(error) => Err(error.to_string()),
        Ok(conn) => match conn.pve.version().await {
            Ok(version) => {
                condition(
                    "CredentialsValid",
                    true,
                    "Authenticated",
                    "Proxmox accepted the credentials".into(),
                );
                let nodes = conn.inventory.fresh_snapshot().await.map(|s| {
                    s.nodes
                        .values()
                        .map(|n| NodeStatus {
                            name: n.name.clone(),
                            online: n.online,
                        })
                        .collect::<Vec<_>>()
                });
                status.version = Some(version.version.clone());
                match nodes {
                    Ok(nodes) => {
                        status.nodes = nodes;
                        Ok(())
                    }
                    Err(error) => Err(format!("reading /cluster/resources: {error}")),
                }
            }
            Err(error) if error.kind() == pve_client::ErrorKind::Unauthorized => {
                condition(
                    "CredentialsValid",
                    false,
                    "Unauthorized",
                    format!("Proxmox refused the credentials: {error}"),
                );
                Err(error.to_string())
            }
            Err(error) => Err(format!("Proxmox unreachable: {error}")),
        },
    };
    match &checked {
        Ok(()) => condition(
            "Ready",
            true,
            "Connected",
            format!(
                "Proxmox VE {} with {} node(s)",
                status.version.as_deref().unwrap_or("?"),
                status.nodes.len()
            ),
        ),
        Err(message) => condition("Ready", false, "NotConnected", message.clone()),
    }
    if cluster.status.as_ref() != Some(&status) {
        let api: Api<ProxmoxCluster> = Api::namespaced(ctx.kube.clone(), &namespace);
        let patch = json!({ "apiVersion": "pve-operator.dev/v1alpha1", "kind": "ProxmoxCluster", "status": status });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(Action::requeue(if checked.is_ok() {
        RECHECK
    } else {
        Duration::from_secs(30)
    }))
}
