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
use pve_operator_api::{MachineRequest, NodeStatus, ProxmoxCluster, ProxmoxClusterStatus};
use serde_json::json;

use super::Context;
use super::status::FIELD_MANAGER;
use crate::privileges::{self, needs_for_specs};
use crate::proxmox::Connection;
use crate::proxmox::registry::ConnectionError;

/// How often a healthy cluster is checked again.
const RECHECK: Duration = Duration::from_secs(300);

/// Runs the ProxmoxCluster controller until `shutdown` completes. `secrets` are the Secret
/// scopes watched for credential changes: one per namespace where credentials may live, or one
/// over all namespaces.
pub async fn run(
    ctx: Arc<Context>,
    clusters: Api<ProxmoxCluster>,
    secrets: Vec<Api<Secret>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(clusters, watcher::Config::default().any_semantic());
    let store = controller.store();
    ctx.instruments.proxmox_cluster_cache(store.clone());
    let controller = secrets.into_iter().fold(controller, |controller, secrets| {
        let store = store.clone();
        controller.watches(
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
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            |cluster, ctx| {
                let instruments = ctx.instruments.clone();
                instruments.timed(
                    crate::ops::metrics::PROXMOX_CLUSTER,
                    "StatusWriteFailed",
                    reconcile(cluster, ctx),
                )
            },
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
            Err(("NotConnected", error.to_string()))
        }
        // The credentials were never read: no CredentialsValid either way.
        Err(error @ ConnectionError::CredentialsNamespaceNotServed { .. }) => {
            Err(("CredentialsNamespaceNotServed", error.to_string()))
        }
        Err(error) => Err(("NotConnected", error.to_string())),
        Ok(conn) => match conn.pve.version().await {
            Ok(version) => {
                condition(
                    "CredentialsValid",
                    true,
                    "Authenticated",
                    "Proxmox accepted the credentials".into(),
                );
                match privileges_condition(&ctx, &conn, &namespace, &name).await {
                    Ok((ok, reason, message)) => {
                        condition("PrivilegesSufficient", ok, reason, message)
                    }
                    Err(error) => {
                        tracing::info!(cluster = %name, %error, "could not check the privileges")
                    }
                }
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
                    Err(error) => Err((
                        "NotConnected",
                        format!("reading /cluster/resources: {error}"),
                    )),
                }
            }
            Err(error) if error.kind() == pve_client::ErrorKind::Unauthorized => {
                condition(
                    "CredentialsValid",
                    false,
                    "Unauthorized",
                    format!("Proxmox refused the credentials: {error}"),
                );
                Err(("NotConnected", error.to_string()))
            }
            // Not an outage: retrying cannot help until the config or the certificate changes.
            Err(error) if error.kind() == pve_client::ErrorKind::Certificate => {
                Err(("CertificateRejected", error.to_string()))
            }
            Err(error) => Err(("NotConnected", format!("Proxmox unreachable: {error}"))),
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
        Err((reason, message)) => condition("Ready", false, reason, message.clone()),
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

/// The `PrivilegesSufficient` condition: the needs of the MachineRequests in the cluster's
/// namespace that reference it (every feature when none does, storages and bridges then on
/// `/storage` and `/sdn/zones/localnetwork`), checked as `pve-operator preflight` checks them.
/// Requests are listed at each check (every few minutes), so a new request's storage shows up
/// here at the next check; the request itself is checked before anything is created for it.
async fn privileges_condition(
    ctx: &Context,
    conn: &Connection,
    namespace: &str,
    name: &str,
) -> Result<(bool, &'static str, String), String> {
    let requests: Api<MachineRequest> = Api::namespaced(ctx.kube.clone(), namespace);
    let specs: Vec<_> = requests
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing the MachineRequests of {namespace}: {e}"))?
        .items
        .into_iter()
        .filter(|r| r.spec.cluster_ref.as_ref().is_some_and(|c| c.name == name))
        .map(|r| r.spec)
        .collect();
    let mut subject = conn.permissions.subject().clone();
    subject
        .discover_privsep(&conn.pve)
        .await
        .map_err(|e| format!("asking about the token's privilege separation: {e}"))?;
    let report = privileges::check(&conn.pve, &subject, &needs_for_specs(&specs))
        .await
        .map_err(|e| format!("reading the effective permissions: {e}"))?;
    let scope = if specs.is_empty() {
        "every feature (no MachineRequest references this cluster yet)".to_string()
    } else {
        format!(
            "the {} MachineRequest(s) referencing this cluster",
            specs.len()
        )
    };
    let warnings = if report.warnings.is_empty() {
        String::new()
    } else {
        let list: Vec<&str> = report.warnings.iter().map(|w| w.message.as_str()).collect();
        format!("; warnings: {}", list.join("; "))
    };
    Ok(if report.sufficient() {
        (
            true,
            if warnings.is_empty() {
                "AllPresent"
            } else {
                "AllPresentWithWarnings"
            },
            format!(
                "the credentials hold all {} privileges needed by {scope}{warnings}",
                report.present.len()
            ),
        )
    } else {
        let missing: Vec<String> = report.missing.iter().map(ToString::to_string).collect();
        (
            false,
            "MissingPrivilege",
            format!(
                "missing for {scope}: {}; `pve-operator privileges` prints the pveum commands that grant them{warnings}",
                missing.join(", ")
            ),
        )
    })
}
