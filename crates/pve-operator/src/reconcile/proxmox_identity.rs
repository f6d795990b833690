//! The ProxmoxIdentity controller: reads the identity's Secret (in the controller's namespace),
//! checks it (no file names, the url agrees with `spec.endpoint`), connects and reports the
//! endpoint, the Proxmox version and whether the credentials work, in the identity's status,
//! which only the admin needs to read. A change of the Secret is seen through its watch.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pve_operator_api::{ProxmoxIdentity, ProxmoxIdentityStatus};

use super::Context;
use super::conditions::{Conditions, credentials, finish_status_pass, run_status_controller};
use super::status::types;
use crate::ops::metrics::PROXMOX_IDENTITY;
use crate::proxmox::registry::IdentityError;

/// How often a healthy identity is checked again.
const RECHECK: Duration = Duration::from_secs(300);

/// Runs the ProxmoxIdentity controller over the identities `identities` and its watch
/// configuration select, until `shutdown` completes. A change of an identity's Secret
/// reconciles the identities that name it.
pub async fn run(
    ctx: Arc<Context>,
    (identities, identity_watch): (Api<ProxmoxIdentity>, watcher::Config),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(identities, identity_watch.any_semantic());
    let store = controller.store();
    let changed = ctx
        .clusters
        .secrets()
        .changes()
        .flat_map(move |secret: String| {
            let refs: Vec<ObjectRef<ProxmoxIdentity>> = store
                .state()
                .into_iter()
                .filter(|i| i.spec.secret_ref.name == secret)
                .map(|i| ObjectRef::from_obj(&*i))
                .collect();
            futures::stream::iter(refs)
        });
    let controller = controller
        .reconcile_on(changed)
        .graceful_shutdown_on(shutdown);
    run_status_controller(controller, ctx, PROXMOX_IDENTITY, reconcile).await;
}

/// Why a ProxmoxIdentity's status could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing ProxmoxIdentity status: {0}")]
pub struct StatusError(#[from] kube::Error);

fn secret_reason(error: &IdentityError) -> &'static str {
    match error {
        IdentityError::SecretNotFound { .. } => "SecretNotFound",
        IdentityError::SecretUnreadable(_) => "SecretUnreadable",
        IdentityError::SecretInvalid { .. } | IdentityError::Settings { .. } => "SecretInvalid",
        IdentityError::EndpointMismatch { .. } => "EndpointMismatch",
        IdentityError::EndpointInvalid { .. } => "EndpointInvalid",
    }
}

async fn reconcile(
    identity: Arc<ProxmoxIdentity>,
    ctx: Arc<Context>,
) -> Result<Action, StatusError> {
    let name = identity.name_any();
    let generation = identity.metadata.generation;
    let mut status = ProxmoxIdentityStatus {
        observed_generation: generation,
        ..ProxmoxIdentityStatus::default()
    };
    let previous = identity.status.clone().unwrap_or_default();
    let mut conditions = Conditions::new(&previous.conditions, generation);
    let checked = match ctx.clusters.identity_connection(&identity).await {
        Err(error) => {
            let reason = secret_reason(&error);
            conditions.set("SecretValid", false, reason, error.to_string());
            Err((reason, error.to_string()))
        }
        Ok(conn) => {
            conditions.set(
                "SecretValid",
                true,
                "Valid",
                format!("the credentials are used with {}", conn.endpoint),
            );
            status.endpoint = Some(conn.endpoint.clone());
            let version = credentials(&conn, &mut conditions).await;
            status.version = version.as_ref().ok().cloned();
            version
        }
    };
    match &checked {
        Ok(version) => conditions.set(
            types::READY,
            true,
            "Connected",
            format!("Proxmox VE {version} accepted the credentials"),
        ),
        Err((reason, message)) => conditions.set(types::READY, false, reason, message.clone()),
    }
    status.conditions = conditions.list;
    let api: Api<ProxmoxIdentity> = Api::all(ctx.kube.clone());
    let previous = identity.status.as_ref();
    Ok(finish_status_pass(api, &name, previous, &status, checked.is_ok(), RECHECK).await?)
}
