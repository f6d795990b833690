//! The status of a MachineRequest: conditions that `kubectl wait --for=condition=Ready`
//! understands, written with server-side apply only when something changed, and only over the
//! version of the object it was computed from.

use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use pve_operator_api::{MachineRequest, MachineRequestStatus};
use serde_json::json;

/// The field manager of everything the controller writes.
pub const FIELD_MANAGER: &str = "pve-operator";

/// Condition types.
pub mod types {
    /// The VM exists and is as specified.
    pub const READY: &str = "Ready";
    /// The VM has been created.
    pub const PROVISIONED: &str = "Provisioned";
    /// The VM's power state matches the spec.
    pub const POWERED: &str = "PoweredOn";
    /// Changes wait for a restart of the VM.
    pub const RESTART_REQUIRED: &str = "RestartRequired";
    /// The Proxmox token has the privileges the request needs.
    pub const PRIVILEGES: &str = "PrivilegesSufficient";
}

/// Sets (or updates) condition `type_` in `status`, keeping its transition time when its status
/// does not change.
pub fn set_condition(
    status: &mut MachineRequestStatus,
    generation: Option<i64>,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
) {
    let value = if value { "True" } else { "False" };
    let message = message.into();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != value {
                existing.last_transition_time = now;
            }
            existing.status = value.to_string();
            existing.reason = reason.to_string();
            existing.message = message;
            existing.observed_generation = generation;
        }
        None => status.conditions.push(Condition {
            type_: type_.to_string(),
            status: value.to_string(),
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// Removes condition `type_`.
pub fn clear_condition(status: &mut MachineRequestStatus, type_: &str) {
    status.conditions.retain(|c| c.type_ != type_);
}

/// Whether condition `type_` is True.
pub fn is_true(status: &MachineRequestStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Writes one request's status during one reconcile with optimistic concurrency: every write
/// (server-side apply of the status subresource) carries the `resourceVersion` the reconcile
/// started from, or the one its previous write returned. A writer working from a stale copy (an
/// old leader, a cache that lags) gets 409 Conflict and starts over from fresh state instead of
/// erasing what a newer writer recorded (`status.vmid` above all).
pub struct StatusWriter {
    api: Api<MachineRequest>,
    name: String,
    written: Mutex<Written>,
}

/// What the object holds as far as this writer knows.
struct Written {
    resource_version: Option<String>,
    status: Option<MachineRequestStatus>,
}

impl StatusWriter {
    /// A writer for `request` as the reconcile read it.
    pub fn new(api: Api<MachineRequest>, request: &MachineRequest) -> Self {
        Self {
            api,
            name: request.name_any(),
            written: Mutex::new(Written {
                resource_version: request.resource_version(),
                status: request.status.clone(),
            }),
        }
    }

    /// Writes `status` when it differs from what the object holds. Fails with 409 Conflict
    /// ([`kube::Error::Api`] with `is_conflict()`) when the object changed since it was read.
    pub async fn write(&self, status: &MachineRequestStatus) -> Result<(), kube::Error> {
        let resource_version = {
            let written = self.lock();
            if written.status.as_ref() == Some(status) {
                return Ok(());
            }
            written.resource_version.clone()
        };
        let patch = json!({
            "apiVersion": "pve-operator.dev/v1alpha1",
            "kind": "MachineRequest",
            "metadata": { "name": self.name, "resourceVersion": resource_version },
            "status": status,
        });
        let updated = self
            .api
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        let mut written = self.lock();
        written.resource_version = updated.resource_version();
        written.status = Some(status.clone());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}
