//! The MachineRequest controller: kube's runtime `Controller` with the finalizer helper, driven
//! by watch events, by the task trackers and by the inventories of the Proxmox clusters.

pub mod apply;
pub mod cache;
pub mod cleanup;
pub mod conditions;
pub mod error;
pub mod images;
pub mod ownership;
mod pass;
pub mod proxmox_cluster;
pub mod proxmox_identity;
pub mod proxmox_image;
pub mod status;
pub mod task_kind;
pub mod validate;

use std::collections::{HashMap, hash_map::DefaultHasher};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use pve_operator_api::{
    HasConditions, MachineRequest, MachineRequestStatus, Phase, ProxmoxCluster, ProxmoxImage,
};
use tokio::sync::mpsc;

use crate::proxmox::{ClusterRegistry, Purpose};
use crate::tenancy::Policy;
use crate::vmspec::{self, Marker};
use error::{Class, ReconcileError};
use status::{set_condition, types};

/// The finalizer that keeps a MachineRequest until its VM is gone (or released).
pub const FINALIZER: &str = "pve-operator.dev/vm-cleanup";

/// The annotation that asks for a step that failed for good (`status.failedTask`) to be tried
/// again without a change of the spec: any new value does (e.g. the current time).
pub const RETRY_ANNOTATION: &str = "pve-operator.dev/retry";

/// How the controller behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reconcile every request this often even without a trigger (`None`: only on change).
    pub resync: Option<Duration>,
    /// Requests reconciled at once.
    pub concurrency: u16,
    /// How long a permanent failure waits before it is tried again without a spec change.
    pub permanent_retry: Duration,
    /// How long a Proxmox task may run before the request reports it as overdue.
    pub task_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Some(Duration::from_secs(3600)),
            concurrency: 16,
            permanent_retry: Duration::from_secs(300),
            task_deadline: crate::proxmox::tasks::DEFAULT_TASK_DEADLINE,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub kube: Client,
    /// The Proxmox clusters.
    pub clusters: ClusterRegistry,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Behaviour settings.
    pub settings: Settings,
    /// Metrics and cache readiness for the operations endpoints.
    pub instruments: crate::ops::Instruments,
    failures: Mutex<HashMap<ObjectRef<MachineRequest>, u32>>,
    reporter: Reporter,
}

impl Context {
    /// A context; `reporter` names the controller in Events.
    pub fn new(kube: Client, clusters: ClusterRegistry, settings: Settings) -> Self {
        let reporter = Reporter {
            controller: "pve-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(kube.clone(), reporter.clone()),
            reporter,
            kube,
            clusters,
            settings,
            instruments: crate::ops::Instruments::default(),
            failures: Mutex::default(),
        }
    }

    /// Publishes `event` on `reference`: a Warning through the shared [`recorder`], whose cache
    /// counts a warning repeated within six minutes into one Event; a Normal one (one step of
    /// one request, rarely repeated) as it is, since that cache would hold an entry per request
    /// and reason for six minutes, and longer when nothing else is published.
    ///
    /// [`recorder`]: Context::recorder
    pub async fn publish(
        &self,
        event: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        match event.type_ {
            EventType::Warning => self.recorder.publish(event, reference).await,
            EventType::Normal => {
                Recorder::new(self.kube.clone(), self.reporter.clone())
                    .publish(event, reference)
                    .await
            }
        }
    }

    fn failure_count(&self, object: &ObjectRef<MachineRequest>, reset: bool) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if reset {
            failures.remove(object);
            return 0;
        }
        let count = failures.entry(object.clone()).or_insert(0);
        *count += 1;
        *count
    }
}

/// What a reconcile knows about the request it works on.
pub struct RequestScope<'a> {
    /// The request's marker in Proxmox.
    pub marker: &'a Marker,
    /// The VM's name in Proxmox.
    pub vm_name: String,
    /// The MachineRequest API of the request's namespace.
    pub api: Api<MachineRequest>,
    /// The request, for triggers.
    pub object_ref: ObjectRef<MachineRequest>,
    /// The allow-lists of the request's identity and ProxmoxCluster.
    pub policy: Policy,
    /// Writes the request's status over the version this reconcile read (or last wrote).
    pub status: status::StatusWriter,
    reference: ObjectReference,
}

impl RequestScope<'_> {
    /// Publishes an Event on the request (failures to publish are logged, not fatal).
    pub async fn event(&self, ctx: &Context, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.to_string()),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(error) = ctx.publish(&event, &self.reference).await {
            tracing::warn!(%error, reason, "could not publish an Event");
        }
    }
}

/// Runs the controller until `shutdown` completes. `triggers` carries reconcile requests from
/// the task trackers and inventories (the receiving end of the registry's trigger); a change of
/// a ProxmoxCluster in `clusters` (its spec, or its status after its Secret changed) reconciles
/// the requests on it that are not Ready, so that fixing a cluster's certificate pin or
/// credentials takes effect at once rather than at the next slow retry.
pub async fn run(
    ctx: Arc<Context>,
    api: Api<MachineRequest>,
    (clusters, images): (Api<ProxmoxCluster>, Api<ProxmoxImage>),
    triggers: mpsc::UnboundedReceiver<ObjectRef<MachineRequest>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let triggers = futures::stream::unfold(triggers, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let concurrency = ctx.settings.concurrency;
    // Reconcile on what the controller acts on (the spec, finalizers, deletion), not on every
    // status write of its own, each of which would cost another pass of Proxmox reads.
    let (reader, writer) = reflector::store();
    ctx.instruments.machine_request_cache(reader.clone());
    let requests = cache::reflect_requests(api, writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default());
    let on_cluster = reader.clone();
    let on_image = reader.clone();
    Controller::for_stream(requests, reader)
        .with_config(controller::Config::default().concurrency(concurrency))
        .watches(clusters, watcher::Config::default(), move |cluster| {
            waiting_on_cluster(&on_cluster, &cluster)
        })
        .watches(images, watcher::Config::default(), move |image| {
            waiting_on_image(&on_image, &image)
        })
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(request = %object, "reconciled"),
                Err(controller::Error::ReconcilerFailed(error, object)) => {
                    tracing::debug!(request = %object, %error, "reconcile will be retried")
                }
                Err(error) => tracing::warn!(%error, "controller error"),
            }
        })
        .await;
}

/// The requests that name `cluster` in spec.clusterRef and are not Ready: the ones a change of
/// the cluster may unblock (Ready ones keep their own triggers: inventory, resync). When the
/// cluster lost its identity's permission (IdentityAllowed False), all of them: each says so
/// in its own status at once.
fn waiting_on_cluster(
    requests: &reflector::Store<MachineRequest>,
    cluster: &ProxmoxCluster,
) -> Vec<ObjectRef<MachineRequest>> {
    let namespace = cluster.namespace();
    let name = cluster.name_any();
    let revoked = cluster.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "IdentityAllowed" && c.status == "False")
    });
    requests
        .state()
        .into_iter()
        .filter(|request| {
            request.namespace() == namespace
                && request
                    .spec
                    .cluster_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name)
                && (revoked || !request.status.as_ref().is_some_and(|s| s.is_ready()))
        })
        .map(|request| ObjectRef::from_obj(&*request))
        .collect()
}

/// The requests in the image's namespace that use it and are not Ready (those waiting for it).
fn waiting_on_image(
    requests: &reflector::Store<MachineRequest>,
    image: &ProxmoxImage,
) -> Vec<ObjectRef<MachineRequest>> {
    let namespace = image.namespace();
    let name = image.name_any();
    requests
        .state()
        .into_iter()
        .filter(|request| {
            request.namespace() == namespace
                && proxmox_image::images_used_by(request).contains(&name)
                && !request.status.as_ref().is_some_and(|s| s.is_ready())
        })
        .map(|request| ObjectRef::from_obj(&*request))
        .collect()
}

/// The longest wait after a transient error.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A number in [0, 1) that differs between requests and attempts (deterministic, no RNG needed).
fn jitter(request: &MachineRequest, attempts: u32) -> f64 {
    let mut hasher = DefaultHasher::new();
    request.metadata.uid.hash(&mut hasher);
    attempts.hash(&mut hasher);
    (hasher.finish() % 1000) as f64 / 1000.0
}

/// A hash of the parts of a request whose change needs a reconcile: generation (the spec),
/// finalizers, the deletion timestamp and the retry annotation.
fn spec_or_lifecycle(request: &MachineRequest) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    request.metadata.generation.hash(&mut hasher);
    request
        .annotations()
        .get(RETRY_ANNOTATION)
        .hash(&mut hasher);
    request.metadata.finalizers.hash(&mut hasher);
    request
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The controller's error: the finalizer helper wraps ours.
pub type Error = finalizer::Error<ReconcileError>;

async fn reconcile(request: Arc<MachineRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace =
        request
            .namespace()
            .ok_or(finalizer::Error::ApplyFailed(ReconcileError::Incomplete(
                "namespace",
            )))?;
    let api: Api<MachineRequest> = Api::namespaced(ctx.kube.clone(), &namespace);
    finalizer(&api, FINALIZER, request, |event| async {
        match event {
            finalizer::Event::Apply(request) => step(&request, &ctx, false).await,
            finalizer::Event::Cleanup(request) => step(&request, &ctx, true).await,
        }
    })
    .await
}

/// One pass of apply or cleanup, with status written and errors reported either way.
async fn step(
    request: &MachineRequest,
    ctx: &Context,
    deleting: bool,
) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    let namespace = request
        .namespace()
        .ok_or(ReconcileError::Incomplete("namespace"))?;
    let marker = Marker::of(request).ok_or(ReconcileError::Incomplete("uid"))?;
    let api: Api<MachineRequest> = Api::namespaced(ctx.kube.clone(), &namespace);
    let mut scope = RequestScope {
        marker: &marker,
        vm_name: vmspec::vm_name(request),
        api: api.clone(),
        object_ref: apply::object_ref(request),
        policy: Policy::unrestricted(),
        status: status::StatusWriter::new(api.clone(), request),
        reference: request.object_ref(&()),
    };
    let mut status = request.status.clone().unwrap_or_default();
    let cluster_ref = request.spec.cluster_ref.as_ref().map(|c| c.name.as_str());
    let mut binding = ctx
        .clusters
        .binding(&namespace, cluster_ref, Purpose::Apply)
        .await;
    if deleting
        && let Err(error) = &binding
        && error.is_namespace_refusal()
    {
        if status.vmid.is_none() && !status::is_true(&status, types::PROVISIONED) {
            // Never given a VM there: nothing in Proxmox to look at.
            scope
                .event(
                    ctx,
                    EventType::Normal,
                    "Deleted",
                    "no VM was ever created for this request; releasing it",
                )
                .await;
            return Ok(Action::await_change());
        }
        // Its own VM (the marker rules still apply) may be removed after access was revoked.
        binding = ctx
            .clusters
            .binding(&namespace, cluster_ref, Purpose::Cleanup)
            .await;
    }
    let result = match binding {
        Ok(binding) => {
            scope.policy = binding.policy;
            let conn = binding.connection;
            let pass = pass::Pass {
                request,
                scope: &scope,
                conn: &conn,
                ctx,
                status: &mut status,
                handoff: None,
            };
            if deleting {
                pass.delete().await
            } else {
                let result = pass.apply().await;
                // What this pass left the VM as: the inventory triggers when Proxmox differs.
                let expected = match (&result, status.vmid, &status.node, status.phase) {
                    (Ok(_), Some(vmid), Some(node), Some(Phase::Running | Phase::Stopped))
                        if status.current_task.is_none() =>
                    {
                        let power = if status.phase == Some(Phase::Running) {
                            "running"
                        } else {
                            "stopped"
                        };
                        Some((vmid, node.clone(), power.to_string()))
                    }
                    _ => None,
                };
                conn.inventory
                    .watch(&marker.uid, scope.object_ref.clone(), expected);
                result
            }
        }
        Err(error) => Err(error.into()),
    };
    let scope = &scope;
    let failure = match &result {
        Ok(_) | Err(ReconcileError::DeletionInProgress(_) | ReconcileError::NodeBusy(_)) => None,
        Err(error) if error.is_stale_write() => None,
        Err(error) => Some(error.reason()),
    };
    // A write refused because the object changed meanwhile: the pass is done again from the
    // fresh object (no condition, no Event; writing status now would be refused too).
    let stale = matches!(&result, Err(error) if error.is_stale_write());
    let outcome = match result {
        Err(stale) if stale.is_stale_write() => {
            tracing::debug!(request = %scope.object_ref, error = %stale, "the request changed meanwhile; starting over from its current version");
            Err(stale)
        }
        Ok(action) => {
            ctx.failure_count(&scope.object_ref, true);
            // (A pass held back by a failed task sent nothing: that proves no privilege.)
            if status.failed_task.is_none()
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == types::PRIVILEGES && c.status == "False")
            {
                set_condition(
                    &mut status,
                    request.metadata.generation,
                    types::PRIVILEGES,
                    true,
                    "NoLongerDenied",
                    "Proxmox accepted every call of the last reconcile",
                );
            }
            Ok(action)
        }
        // Waiting, not failing: no condition, no Warning event.
        Err(waiting @ (ReconcileError::DeletionInProgress(_) | ReconcileError::NodeBusy(_))) => {
            Err(waiting)
        }
        Err(error) => {
            if !deleting && error.is_task_failed_for_good() {
                apply::record_failed_task(request, &mut status, &error);
            }
            report(request, scope, &mut status, &error, ctx).await;
            match error.class() {
                Class::Transient => Err(error),
                // During deletion an Ok releases the finalizer (and would orphan the VM): keep
                // it until the deletion works; the error policy retries with backoff.
                _ if deleting => Err(error),
                // A missing privilege is often granted within minutes: look again sooner.
                Class::Permission { .. } => Ok(Action::requeue(ctx.settings.permanent_retry / 5)),
                _ => Ok(Action::requeue(ctx.settings.permanent_retry)),
            }
        }
    };
    let outcome = if stale {
        outcome
    } else {
        watch_deadline(request, scope, &mut status, outcome, ctx).await
    };
    // After a successful cleanup the finalizer goes and the object with it: no status.
    if !stale && (!deleting || outcome.is_err()) {
        scope.status.write(&status).await?;
    }
    ctx.instruments.reconciled(
        crate::ops::metrics::MACHINE_REQUEST,
        started.elapsed(),
        failure,
    );
    outcome
}

/// Reports a task in flight that has run past `--task-deadline` (TaskOverdue condition, and a
/// Warning Event the first time), and looks again when the deadline of one still within it
/// passes. The task is waited for either way.
async fn watch_deadline(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    status: &mut MachineRequestStatus,
    outcome: Result<Action, ReconcileError>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let note = status::note_task_deadline(
        status,
        request.metadata.generation,
        ctx.settings.task_deadline,
        std::time::SystemTime::now(),
    );
    match note {
        status::DeadlineNote::NewlyOverdue(message) => {
            scope
                .event(ctx, EventType::Warning, "TaskOverdue", &message)
                .await;
            outcome
        }
        // While a task runs, a pass ends with a wait of `apply::WAIT`; come back sooner when the
        // deadline passes first.
        status::DeadlineNote::Within(Some(left)) if left < apply::WAIT && outcome.is_ok() => {
            Ok(Action::requeue(left + Duration::from_millis(100)))
        }
        _ => outcome,
    }
}

/// Puts an error into conditions and an Event, worded for the user.
async fn report(
    request: &MachineRequest,
    scope: &RequestScope<'_>,
    status: &mut MachineRequestStatus,
    error: &ReconcileError,
    ctx: &Context,
) {
    let generation = request.metadata.generation;
    let mut message = error.to_string();
    if let ReconcileError::TaskFailed { upid, .. } = error
        && status.failed_task.as_ref().is_some_and(|f| &f.upid == upid)
    {
        message.push_str(&format!(
            ". Trying again cannot fix this, so it is not sent again for this spec (generation {}): fix the cause, then change the spec, or set the annotation {RETRY_ANNOTATION} to a new value (`kubectl annotate -n {} machinerequest {} {RETRY_ANNOTATION}=\"$(date +%s)\" --overwrite`)",
            generation.unwrap_or_default(),
            request.namespace().unwrap_or_default(),
            request.name_any()
        ));
    }
    let message = message;
    let reason = error.reason();
    let class = error.class();
    if let Class::Permission { privileges, path } = &class {
        let missing = format!(
            "Proxmox refused: missing {} on {}",
            if privileges.is_empty() {
                "a privilege".to_string()
            } else {
                privileges.join(" or ")
            },
            path.as_deref().unwrap_or("(path not named by Proxmox)")
        );
        let text = match error {
            // Checked before sending: the error names every missing privilege already.
            ReconcileError::Privileges(crate::privileges::PrivilegeError::Missing { .. }) => {
                message.clone()
            }
            _ => format!("{missing} ({message})"),
        };
        set_condition(
            status,
            generation,
            types::PRIVILEGES,
            false,
            "MissingPrivilege",
            text,
        );
    }
    if matches!(error, ReconcileError::Devices(_)) {
        // Nothing was created: the request waits for a node with its devices.
        status.phase = Some(Phase::Pending);
    } else if !matches!(class, Class::Transient) {
        status.phase = Some(Phase::Failed);
    }
    set_condition(
        status,
        generation,
        types::READY,
        false,
        reason,
        message.clone(),
    );
    scope.event(ctx, EventType::Warning, reason, &message).await;
    tracing::info!(request = %scope.object_ref, reason, %message, "reconcile did not complete");
}

fn error_policy(request: Arc<MachineRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    match error {
        finalizer::Error::CleanupFailed(ReconcileError::DeletionInProgress(_)) => {
            // The task tracker triggers the next pass when the task ends.
            return Action::requeue(Duration::from_secs(30));
        }
        finalizer::Error::ApplyFailed(ReconcileError::NodeBusy(_))
        | finalizer::Error::CleanupFailed(ReconcileError::NodeBusy(_)) => {
            // Woken when a slot frees (`proxmox/task_slots.rs`); this is the fallback.
            return Action::requeue(Duration::from_secs(5));
        }
        _ => {}
    }
    let attempts = ctx.failure_count(&apply::object_ref(&request), false);
    // Exponential, capped at 30 s (a transient error is expected to pass; a request must not
    // sleep for minutes after a burst), with up to 25% jitter so that requests hit by the same
    // outage do not all come back at once.
    let base = Duration::from_millis(500u64 << attempts.min(6)).min(MAX_BACKOFF);
    let backoff = base + base.mul_f64(jitter(&request, attempts) * 0.25);
    tracing::debug!(request = %request.name_any(), %error, attempts, ?backoff, "backing off");
    Action::requeue(backoff)
}
