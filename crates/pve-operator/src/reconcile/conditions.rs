//! What the ProxmoxIdentity and ProxmoxCluster controllers share to build their status: the
//! conditions (rebuilt each pass, through [`pve_operator_api::conditions`] like every kind's)
//! and the credentials' test.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use pve_operator_api::conditions;

use super::Context;
use super::status::{FIELD_MANAGER, types};
use crate::proxmox::ClusterRuntime;

/// The conditions of a status being built, keeping each transition time when its value did not
/// change.
pub struct Conditions<'a> {
    previous: &'a [Condition],
    generation: Option<i64>,
    /// The conditions set so far.
    pub list: Vec<Condition>,
}

impl<'a> Conditions<'a> {
    /// A status of `generation` that had `previous` conditions.
    pub fn new(previous: &'a [Condition], generation: Option<i64>) -> Self {
        Self {
            previous,
            generation,
            list: Vec::new(),
        }
    }

    /// Sets condition `type_` (True when `ok`).
    pub fn set(&mut self, type_: &str, ok: bool, reason: &str, message: String) {
        let previous = conditions::find(self.previous, type_);
        let condition =
            conditions::condition(previous, self.generation, type_, ok, reason, message);
        self.list.push(condition);
    }
}

/// Asks Proxmox for its version, which tests the credentials, and sets `CredentialsValid`.
/// Returns the version, or the Ready reason and message of what went wrong.
pub async fn credentials(
    conn: &ClusterRuntime,
    conditions: &mut Conditions<'_>,
) -> Result<String, (&'static str, String)> {
    match conn.pve.version().await {
        Ok(version) => {
            // The privilege rows of this release apply from now on (an upgrade shows here).
            conn.release.note(version.privilege_release());
            conditions.set(
                types::CREDENTIALS,
                true,
                "Authenticated",
                "Proxmox accepted the credentials".into(),
            );
            Ok(version.version)
        }
        Err(error) if error.kind() == pve_client::ErrorKind::Unauthorized => {
            conditions.set(
                types::CREDENTIALS,
                false,
                "Unauthorized",
                format!("Proxmox refused the credentials: {error}"),
            );
            Err(("Unauthorized", error.to_string()))
        }
        // Not an outage: retrying cannot help until the config or the certificate changes.
        Err(error) if error.kind() == pve_client::ErrorKind::Certificate => {
            Err(("CertificateRejected", error.to_string()))
        }
        Err(error) => Err(("NotConnected", format!("Proxmox unreachable: {error}"))),
    }
}

/// The server-side-apply body for the status subresource of a `K` (apiVersion and kind from the
/// type, not spelled out).
pub fn status_patch<K: kube::Resource<DynamicType = ()>>(
    status: &impl serde::Serialize,
) -> serde_json::Value {
    serde_json::json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status })
}

/// Runs `controller`, one of the controllers that only write status (ProxmoxCluster,
/// ProxmoxIdentity), until its stream ends: every `reconcile` is timed under `metric` (a failure
/// is a status write that failed, tried again after 30 s) and a failure is logged at debug level.
pub async fn run_status_controller<K, Fut, E>(
    controller: Controller<K>,
    ctx: Arc<Context>,
    metric: &'static str,
    reconcile: fn(Arc<K>, Arc<Context>) -> Fut,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    controller
        .run(
            move |object, ctx| {
                let instruments = ctx.instruments.clone();
                instruments.timed(metric, "StatusWriteFailed", reconcile(object, ctx))
            },
            |_, _, _| Action::requeue(Duration::from_secs(30)),
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "{} reconcile failed", K::kind(&()));
            }
        })
        .await;
}

/// Writes `status` of `name` through `api` (server-side apply of the status subresource) unless
/// it equals what the object has (`previous`).
pub async fn write_status_if_changed<K, S>(
    api: &Api<K>,
    name: &str,
    previous: Option<&S>,
    status: &S,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if previous != Some(status) {
        let patch = status_patch::<K>(status);
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(())
}

/// Ends a pass of a status-only controller: writes `status` of `name` through `api` (server-side
/// apply of the status subresource) unless it equals what the object has (`previous`), then comes
/// back after `recheck` when the check passed (`ok`) and after 30 s when it did not.
pub async fn finish_status_pass<K, S>(
    api: Api<K>,
    name: &str,
    previous: Option<&S>,
    status: &S,
    ok: bool,
    recheck: Duration,
) -> Result<Action, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    write_status_if_changed(&api, name, previous, status).await?;
    Ok(Action::requeue(if ok {
        recheck
    } else {
        Duration::from_secs(30)
    }))
}
