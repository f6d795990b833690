//! Phase 1: the Proxmox task recorded in a request's status. A running task ends the pass; a
//! finished one is cleared; one that failed for good is recorded in `status.failedTask` and holds
//! the request back until its spec or retry annotation changes.

use kube::ResourceExt;
use kube::runtime::events::EventType;
use pve_client::Upid;
use pve_operator_api::{FailedTask, MachineRequest, MachineRequestStatus, TaskRef};

use super::super::RequestScope;
use super::super::error::ReconcileError;
use super::super::task_kind::describe_task;
use super::Pass;
use crate::proxmox::{ClusterRuntime, Wake};

/// What became of the task recorded in a request's status.
pub(in crate::reconcile) enum RecordedTask {
    /// No task is recorded.
    None,
    /// It still runs.
    Running,
    /// It ended well (and is no longer recorded).
    Succeeded(TaskRef),
}

/// Looks at the task recorded in `status` through the cluster's task tracker (tracking it again
/// after a restart). A finished task is cleared from status; a failed one becomes an error that
/// carries Proxmox's exit status and the last line of the task log.
pub(in crate::reconcile) fn recorded_task(
    status: &mut MachineRequestStatus,
    conn: &ClusterRuntime,
    scope: &RequestScope<'_>,
) -> Result<RecordedTask, ReconcileError> {
    if let (None, Some(vmid)) = (&status.current_task, status.vmid) {
        // A task this controller sent for the request's VM whose record in status was refused
        // (the request had changed meanwhile): it is the request's task all the same. (Only on
        // the recorded VM: a request made again under the same name does not inherit a task.)
        let owner = Wake::Request(scope.object_ref.clone());
        let sent = conn.tasks.task_of(&owner);
        if let Some(upid) = sent.filter(|u| u.id == vmid.to_string()) {
            status.current_task = Some(TaskRef {
                task_type: upid.task_type.clone(),
                upid: upid.to_string(),
            });
        }
    }
    let Some(task) = status.current_task.clone() else {
        return Ok(RecordedTask::None);
    };
    let Ok(upid) = task.upid.parse::<Upid>() else {
        status.current_task = None; // not a UPID: nothing to wait for
        return Ok(RecordedTask::None);
    };
    conn.tasks
        .track(&upid, Wake::Request(scope.object_ref.clone()));
    let Some(outcome) = conn.tasks.take_outcome(&upid) else {
        return Ok(RecordedTask::Running);
    };
    status.current_task = None;
    if outcome.succeeded() {
        return Ok(RecordedTask::Succeeded(task));
    }
    Err(ReconcileError::TaskFailed {
        action: describe_task(&task),
        upid: task.upid.clone(),
        task_type: task.task_type.clone(),
        exit: outcome.exit.to_string(),
        log_tail: outcome.log_tail,
    })
}

/// The longest Proxmox exit status kept in `status.failedTask`.
const EXIT_STATUS_CHARS: usize = 1024;

/// Records in `status.failedTask` a task that failed for good (`error` is a
/// [`ReconcileError::TaskFailed`] that is not transient), with the generation and retry
/// annotation it failed at, so that neither this controller nor one started later sends it again
/// until one of them changes.
pub(in crate::reconcile) fn record_failed_task(
    request: &MachineRequest,
    status: &mut MachineRequestStatus,
    error: &ReconcileError,
) {
    let ReconcileError::TaskFailed {
        upid,
        task_type,
        exit,
        ..
    } = error
    else {
        return;
    };
    status.failed_task = Some(FailedTask {
        upid: upid.clone(),
        task_type: task_type.clone(),
        exit_status: exit.chars().take(EXIT_STATUS_CHARS).collect(),
        reason: error.reason().to_string(),
        observed_generation: request.metadata.generation.unwrap_or_default(),
        retry_annotation: retry_annotation(request),
    });
}

fn retry_annotation(request: &MachineRequest) -> Option<String> {
    request
        .annotations()
        .get(super::super::RETRY_ANNOTATION)
        .cloned()
}

impl Pass<'_> {
    /// Whether the task recorded in `status.failedTask` still holds the request back: it failed
    /// at this generation and retry annotation. Otherwise the record goes (with an Event saying
    /// what is tried again, and why) and the request proceeds.
    pub(super) async fn held_back_by_failed_task(&mut self) -> bool {
        let Some(failed) = &self.status.failed_task else {
            return false;
        };
        let generation = self.request.metadata.generation.unwrap_or_default();
        let annotation = retry_annotation(self.request);
        if failed.observed_generation == generation && failed.retry_annotation == annotation {
            return true;
        }
        let why = if failed.observed_generation != generation {
            format!("the spec changed (generation {generation})")
        } else {
            format!("the {} annotation changed", super::super::RETRY_ANNOTATION)
        };
        let what = describe_task(&TaskRef {
            upid: failed.upid.clone(),
            task_type: failed.task_type.clone(),
        });
        self.status.failed_task = None;
        let note = format!("{why}: trying again what failed before ({what})");
        self.event(EventType::Normal, "Retrying", &note).await;
        false
    }
}
