//! The status of a MachineRequest: conditions that `kubectl wait --for=condition=Ready`
//! understands, written with server-side apply only when something changed, and only over the
//! version of the object it was computed from.

use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use pve_client::Upid;
use pve_operator_api::{HasConditions, MachineRequest, MachineRequestStatus, conditions};
use serde_json::json;

use crate::proxmox::tasks::{TaskAge, task_age};

/// The field manager of everything the controller writes.
pub const FIELD_MANAGER: &str = "pve-operator";

/// Condition types (the API crate's, where every kind's conditions are defined).
pub use pve_operator_api::conditions::types;

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
    conditions::set(
        &mut status.conditions,
        generation,
        type_,
        value,
        reason,
        message,
    );
}

/// Removes condition `type_`.
pub fn clear_condition(status: &mut MachineRequestStatus, type_: &str) {
    conditions::clear(&mut status.conditions, type_);
}

/// Whether condition `type_` is True.
pub fn is_true(status: &MachineRequestStatus, type_: &str) -> bool {
    status.is_true(type_)
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
            "apiVersion": <MachineRequest as kube::Resource>::api_version(&()),
            "kind": <MachineRequest as kube::Resource>::kind(&()),
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

/// What [`note_task_deadline`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineNote {
    /// No task runs, or it is within its deadline (then: how long until it passes).
    Within(Option<Duration>),
    /// The task has just been found past its deadline: the message for an Event.
    NewlyOverdue(String),
    /// The task was already reported as overdue.
    StillOverdue,
}

/// Compares the task recorded in `status` with `deadline` (from its UPID's start time) and
/// keeps the TaskOverdue condition in step: True, naming the UPID and how long it has run, while
/// the task is past its deadline; absent otherwise. The controller keeps waiting either way.
pub fn note_task_deadline(
    status: &mut MachineRequestStatus,
    generation: Option<i64>,
    deadline: Duration,
    now: std::time::SystemTime,
) -> DeadlineNote {
    let upid = status
        .current_task
        .as_ref()
        .and_then(|t| t.upid.parse::<Upid>().ok());
    let Some(upid) = upid else {
        clear_condition(status, types::TASK_OVERDUE);
        return DeadlineNote::Within(None);
    };
    match task_age(&upid, deadline, now) {
        TaskAge::Within(left) => {
            clear_condition(status, types::TASK_OVERDUE);
            DeadlineNote::Within(Some(left))
        }
        TaskAge::Overdue(running) => {
            let text = upid.to_string();
            let known = status.conditions.iter().any(|c| {
                c.type_ == types::TASK_OVERDUE && c.status == "True" && c.message.contains(&text)
            });
            let message = format!(
                "Proxmox task {text} has run for {} (--task-deadline is {}); still waiting for it: it is neither stopped nor abandoned. Look at it in Proxmox (Datacenter > Tasks, or `pvenode task status {text}`)",
                format_duration(running),
                format_duration(deadline)
            );
            set_condition(
                status,
                generation,
                types::TASK_OVERDUE,
                true,
                "DeadlinePassed",
                message.clone(),
            );
            if known {
                DeadlineNote::StillOverdue
            } else {
                DeadlineNote::NewlyOverdue(message)
            }
        }
    }
}

/// `1h 2m 3s`, `4m 0s`, `5s`.
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use pve_operator_api::TaskRef;

    use super::*;

    fn running(starttime: u32) -> MachineRequestStatus {
        MachineRequestStatus {
            current_task: Some(TaskRef {
                upid: format!("UPID:pve:0012D68C:8206F38C:{starttime:08X}:qmclone:9000:root@pam:"),
                task_type: "qmclone".into(),
            }),
            ..MachineRequestStatus::default()
        }
    }

    #[test]
    fn an_overdue_task_is_reported_once_with_its_upid_and_age_and_cleared_when_it_ends() {
        let started = 1_700_000_000u32;
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(u64::from(started) + secs);
        let deadline = Duration::from_secs(1800);
        let mut status = running(started);
        assert_eq!(
            note_task_deadline(&mut status, Some(1), deadline, at(1000)),
            DeadlineNote::Within(Some(Duration::from_secs(800)))
        );
        assert!(status.conditions.is_empty());

        let DeadlineNote::NewlyOverdue(message) =
            note_task_deadline(&mut status, Some(1), deadline, at(1862))
        else {
            panic!("overdue after 31 minutes")
        };
        assert!(message.contains("UPID:pve:0012D68C"), "{message}");
        assert!(
            message.contains("31m 2s") && message.contains("30m 0s"),
            "{message}"
        );
        assert!(is_true(&status, types::TASK_OVERDUE));
        // Found again (by this controller or after a restart): no second Event.
        assert_eq!(
            note_task_deadline(&mut status, Some(1), deadline, at(4000)),
            DeadlineNote::StillOverdue
        );
        assert!(
            status.conditions[0].message.contains("1h 6m 40s"),
            "the age is kept current: {}",
            status.conditions[0].message
        );

        // Another task that runs late is news again.
        let mut next = running(started + 4000);
        next.conditions = status.conditions.clone();
        assert!(matches!(
            note_task_deadline(&mut next, Some(1), deadline, at(4000 + 1800)),
            DeadlineNote::NewlyOverdue(_)
        ));

        status.current_task = None;
        assert_eq!(
            note_task_deadline(&mut status, Some(1), deadline, at(5000)),
            DeadlineNote::Within(None)
        );
        assert!(status.conditions.is_empty(), "the task ended");
    }
}
