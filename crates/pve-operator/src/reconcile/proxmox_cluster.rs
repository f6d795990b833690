//! The ProxmoxCluster controller: checks that the cluster's ProxmoxIdentity allows its namespace
//! and that the cluster only narrows the identity, connects through the identity and reports
//! the endpoint, the Proxmox version, the nodes, and whether the credentials work, in status. It
//! follows changes of the identity (and so of its Secret).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pve_operator_api::{
    MachineRequest, NodeStatus, ProxmoxCluster, ProxmoxClusterStatus, ProxmoxIdentity,
    ProxmoxImage, ProxmoxImageSpec,
};

use super::Context;
use super::conditions::{Conditions, credentials, finish_status_pass, run_status_controller};
use super::status::types;
use crate::ops::metrics::PROXMOX_CLUSTER;
use crate::privileges::{self, VmScope, needs_with_images};
use crate::proxmox::registry::ConnectionError;
use crate::proxmox::{ClusterRuntime, Purpose};

/// How often a healthy cluster is checked again.
const RECHECK: Duration = Duration::from_secs(300);

/// Runs the ProxmoxCluster controller until `shutdown` completes. A change of a ProxmoxIdentity,
/// or of its Secret (new credentials may hold other privileges), reconciles the clusters that
/// refer to it.
pub async fn run(
    ctx: Arc<Context>,
    clusters: Api<ProxmoxCluster>,
    (identities, identity_watch): (Api<ProxmoxIdentity>, watcher::Config),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(clusters, watcher::Config::default().any_semantic());
    let store = controller.store();
    ctx.instruments.proxmox_cluster_cache(store.clone());
    let identities_store = ctx.clusters.directory().identities.clone();
    let by_secret = store.clone();
    let secret_changed = ctx
        .clusters
        .secrets()
        .changes()
        .flat_map(move |secret: String| {
            let identities: Vec<String> = identities_store
                .state()
                .into_iter()
                .filter(|i| i.spec.secret_ref.name == secret)
                .map(|i| i.name_any())
                .collect();
            let refs: Vec<ObjectRef<ProxmoxCluster>> = by_secret
                .state()
                .into_iter()
                .filter(|c| identities.contains(&c.spec.identity_ref.name))
                .map(|c| ObjectRef::from_obj(&*c))
                .collect();
            futures::stream::iter(refs)
        });
    let in_namespace = store.clone();
    let controller = controller
        .reconcile_on(secret_changed)
        // A namespace's labels decide whether an identity's selector allows it.
        .watches(
            Api::<PartialObjectMeta<Namespace>>::all(ctx.kube.clone()),
            watcher::Config::default(),
            move |namespace: PartialObjectMeta<Namespace>| {
                let name = namespace.name_any();
                in_namespace
                    .state()
                    .into_iter()
                    .filter(|c| c.namespace().as_deref() == Some(name.as_str()))
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            identities,
            identity_watch,
            move |identity: ProxmoxIdentity| {
                let name = identity.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.spec.identity_ref.name == name)
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown);
    run_status_controller(controller, ctx, PROXMOX_CLUSTER, reconcile).await;
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
    let mut conditions = Conditions::new(&previous.conditions, generation);
    let checked = match ctx
        .clusters
        .binding(&namespace, Some(&name), Purpose::Apply)
        .await
    {
        Err(error @ ConnectionError::Kube(_)) => Err(("NotConnected", error.to_string())),
        Err(error) => {
            conditions.set("IdentityAllowed", false, error.reason(), error.to_string());
            Err((error.reason(), error.to_string()))
        }
        Ok(binding) => {
            conditions.set(
                "IdentityAllowed",
                true,
                "Allowed",
                format!(
                    "ProxmoxIdentity {:?} allows namespace {namespace:?}",
                    cluster.spec.identity_ref.name
                ),
            );
            let conn = binding.connection;
            status.endpoint = Some(conn.endpoint.clone());
            check_connection(&ctx, &conn, &namespace, &name, &mut status, &mut conditions).await
        }
    };
    match &checked {
        Ok(_) => conditions.set(
            types::READY,
            true,
            "Connected",
            format!(
                "Proxmox VE {} with {} node(s){}",
                status.version.as_deref().unwrap_or("?"),
                status.nodes.len(),
                unsupported_note(status.version.as_deref())
            ),
        ),
        Err((reason, message)) => conditions.set(types::READY, false, reason, message.clone()),
    }
    status.conditions = conditions.list;
    let api: Api<ProxmoxCluster> = Api::namespaced(ctx.kube.clone(), &namespace);
    let previous = cluster.status.as_ref();
    // A privilege check that could not run is tried again soon rather than at the next recheck,
    // so a stale PrivilegesSufficient does not stand for minutes.
    let all_checked = matches!(checked, Ok(true));
    Ok(finish_status_pass(api, &name, previous, &status, all_checked, RECHECK).await?)
}

/// Says so when the version is not a release pve-operator supports (8.4, 9.x): it may work,
/// but the privilege rows and the tests are of those releases.
fn unsupported_note(version: Option<&str>) -> String {
    match version.and_then(pve_client::PveRelease::of_version) {
        Some(release) if !release.is_supported() => format!(
            "; {release} is not a release pve-operator supports (8.4 and 9.x): privileges are judged by the nearest supported release's rows"
        ),
        _ => String::new(),
    }
}

/// Asks Proxmox for its version (the credentials' test), the privileges and the nodes; `Ok`
/// says whether the privileges could be checked (otherwise their condition keeps its last
/// value).
async fn check_connection(
    ctx: &Context,
    conn: &ClusterRuntime,
    namespace: &str,
    name: &str,
    status: &mut ProxmoxClusterStatus,
    conditions: &mut Conditions<'_>,
) -> Result<bool, (&'static str, String)> {
    let version = credentials(conn, conditions).await?;
    let privileges_checked = match privileges_condition(ctx, conn, namespace, name).await {
        Ok((ok, reason, message)) => {
            conditions.set(types::PRIVILEGES, ok, reason, message);
            true
        }
        Err(error) => {
            tracing::info!(cluster = %name, %error, "could not check the privileges; trying again soon");
            false
        }
    };
    status.version = Some(version);
    match conn.inventory.fresh_snapshot().await {
        Ok(snapshot) => {
            status.nodes = snapshot
                .nodes
                .values()
                .map(|n| NodeStatus {
                    name: n.name.clone(),
                    online: n.online,
                })
                .collect();
            Ok(privileges_checked)
        }
        Err(error) => Err((
            "NotConnected",
            format!("reading /cluster/resources: {error}"),
        )),
    }
}

/// The `PrivilegesSufficient` condition: the needs of the MachineRequests and ProxmoxImages in
/// the cluster's namespace that reference it (every feature when none does, storages and bridges then on
/// `/storage` and `/sdn/zones/localnetwork`), checked as `pve-operator preflight` checks them.
/// Requests are listed at each check (every few minutes), so a new request's storage shows up
/// here at the next check; the request itself is checked before anything is created for it.
async fn privileges_condition(
    ctx: &Context,
    conn: &ClusterRuntime,
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
    let images_api: Api<ProxmoxImage> = Api::namespaced(ctx.kube.clone(), namespace);
    let images: Vec<(String, ProxmoxImageSpec)> = images_api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing the ProxmoxImages of {namespace}: {e}"))?
        .items
        .into_iter()
        .filter(|i| i.spec.cluster_ref.as_ref().is_some_and(|c| c.name == name))
        .map(|i| (i.name_any(), i.spec))
        .collect();
    let mut subject = conn.permissions.subject().clone();
    subject
        .discover_privsep(&conn.pve)
        .await
        .map_err(|e| format!("asking about the token's privilege separation: {e}"))?;
    let release = conn
        .release
        .get(&conn.pve)
        .await
        .map_err(|e| format!("asking Proxmox for its version: {e}"))?;
    let needs = needs_with_images(&specs, &images, release, &VmScope::AllVms);
    let report = privileges::check(&conn.pve, &subject, &needs)
        .await
        .map_err(|e| format!("reading the effective permissions: {e}"))?;
    let scope = if specs.is_empty() && images.is_empty() {
        "every feature (no MachineRequest or ProxmoxImage references this cluster yet)".to_string()
    } else {
        format!(
            "the {} MachineRequest(s) and {} ProxmoxImage(s) referencing this cluster",
            specs.len(),
            images.len()
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
                "the credentials hold all {} privileges Proxmox VE {release} checks for {scope}{warnings}",
                report.present.len()
            ),
        )
    } else {
        let missing: Vec<String> = report.missing.iter().map(ToString::to_string).collect();
        (
            false,
            "MissingPrivilege",
            format!(
                "missing for {scope} on Proxmox VE {release}: {}; `pve-operator privileges {}` prints the pveum commands that grant them{warnings}",
                missing.join(", "),
                if release.is_supported() {
                    format!("--pve-version {release}")
                } else {
                    "--config <this connection>".to_string()
                }
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::unsupported_note;

    #[test]
    fn only_an_unsupported_release_gets_a_note() {
        assert_eq!(unsupported_note(Some("9.1.5")), "");
        assert_eq!(unsupported_note(Some("8.4.17")), "");
        assert_eq!(unsupported_note(None), "");
        assert!(
            unsupported_note(Some("8.3.2")).contains("8.3 is not a release pve-operator supports")
        );
        assert!(unsupported_note(Some("7.4-3")).contains("7.4 is not"));
    }
}
