//! Prometheus metrics in the OpenMetrics text format (`prometheus-client`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `pve_operator_reconciles_total` | counter | `controller`, `outcome` (`success`, `error`) |
//! | `pve_operator_reconcile_duration_seconds` | histogram | `controller`, `outcome` |
//! | `pve_operator_reconcile_errors_total` | counter | `controller`, `reason` (the condition reason) |
//! | `pve_operator_proxmox_requests_total` | counter | `method`, `endpoint`, `status` |
//! | `pve_operator_proxmox_request_duration_seconds` | histogram | `method`, `endpoint` |
//! | `pve_operator_proxmox_tasks_in_flight` | gauge | `task_type` (`qmcreate`, `qmstart`, ...) |
//! | `pve_operator_machine_requests` | gauge | `phase` |
//!
//! Proxmox requests are counted by [`ProxmoxRequestLayer`], a `tracing` layer that reads the
//! `pve_request` spans of `pve-client`; endpoints are path templates (`/nodes/{node}/qemu/{vmid}`),
//! so that the number of series does not grow with the number of VMs. Tasks in flight and
//! requests by phase are read from the controller's cache at scrape time.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pve_operator_api::{MachineRequest, Phase};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The `controller` label of the MachineRequest controller.
pub const MACHINE_REQUEST: &str = "machinerequest";
/// The `controller` label of the ProxmoxCluster controller.
pub const PROXMOX_CLUSTER: &str = "proxmoxcluster";
/// The `controller` label of the ProxmoxIdentity controller.
pub const PROXMOX_IDENTITY: &str = "proxmoxidentity";
/// The `controller` label of the ProxmoxImage controller.
pub const PROXMOX_IMAGE: &str = "proxmoximage";

/// Labels of the reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Which controller.
    pub controller: &'static str,
    /// `success` or `error`.
    pub outcome: &'static str,
}

/// Labels of the reconcile error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Which controller.
    pub controller: &'static str,
    /// The reason written into the Ready condition (`MissingPrivilege`, `TaskFailed`, ...).
    pub reason: &'static str,
}

/// Labels of the Proxmox request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Path template, e.g. `/nodes/{node}/qemu/{vmid}/status/start`.
    pub endpoint: String,
    /// HTTP status, or `error` when no response came (connection failure, timeout).
    pub status: String,
}

/// Labels of the Proxmox latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// HTTP method.
    pub method: String,
    /// Path template.
    pub endpoint: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_histogram() -> Histogram {
    // 5 ms .. ~41 s
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn request_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The Proxmox request metrics of this process. They are process-wide because the `tracing`
/// subscriber that feeds them is.
struct ProxmoxRequestMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<EndpointLabels>,
}

static PROXMOX: LazyLock<ProxmoxRequestMetrics> = LazyLock::new(|| ProxmoxRequestMetrics {
    requests: Family::default(),
    latency: Family::new_with_constructor(request_histogram),
});

/// Labels of a per-node gauge: the cluster's API endpoint and the node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    cluster: String,
    node: String,
}

/// Each node's task window (`proxmox/task_slots.rs`), process-wide like the request metrics:
/// the windows live in the per-cluster runtimes, which come and go with their credentials.
static NODE_TASK_WINDOWS: LazyLock<Family<NodeLabels, Gauge>> = LazyLock::new(Family::default);

/// Records that `node` of the cluster at `cluster` (its API URL) may now run `tasks` of the
/// controller's tasks at once.
pub fn set_node_task_window(cluster: &str, node: &str, tasks: usize) {
    let labels = NodeLabels {
        cluster: cluster.to_string(),
        node: node.to_string(),
    };
    NODE_TASK_WINDOWS
        .get_or_create(&labels)
        .set(i64::try_from(tasks).unwrap_or(i64::MAX));
}

/// The controller's metrics. Cheap to clone; clones share the values.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: HistogramFamily<ReconcileLabels>,
    errors: Family<ErrorLabels, Counter>,
    requests: Arc<Mutex<Option<Store<MachineRequest>>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_histogram),
            errors: Family::default(),
            requests: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Counts one reconcile of `controller` that took `elapsed`; `failure` is the reason of
    /// the error it reported, if any.
    pub fn reconciled(
        &self,
        controller: &'static str,
        elapsed: Duration,
        failure: Option<&'static str>,
    ) {
        let labels = ReconcileLabels {
            controller,
            outcome: if failure.is_some() {
                "error"
            } else {
                "success"
            },
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.errors
                .get_or_create(&ErrorLabels { controller, reason })
                .inc();
        }
    }

    /// The MachineRequest cache that the phase and task gauges are read from at scrape time.
    pub fn set_machine_requests(&self, store: Store<MachineRequest>) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    /// A registry with every metric of this controller (and the process-wide Proxmox request
    /// metrics), all names prefixed with `pve_operator`.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("pve_operator");
        registry.register(
            "reconciles",
            "Reconciles by controller and outcome",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, by controller and outcome",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile errors by controller and reason",
            self.errors.clone(),
        );
        registry.register(
            "proxmox_requests",
            "Proxmox VE API requests by method, endpoint and HTTP status",
            PROXMOX.requests.clone(),
        );
        registry.register(
            "proxmox_request_duration_seconds",
            "Proxmox VE API request latency by method and endpoint",
            PROXMOX.latency.clone(),
        );
        registry.register(
            "node_task_window",
            "How many of the controller's Proxmox tasks each node may run at once now (grows while tasks succeed, halves on lock timeouts; at most --max-tasks-per-node)",
            NODE_TASK_WINDOWS.clone(),
        );
        registry.register_collector(Box::new(CacheGauges {
            requests: self.requests.clone(),
        }));
        registry
    }
}

/// Gauges computed from the MachineRequest cache on each scrape.
#[derive(Debug)]
struct CacheGauges {
    requests: Arc<Mutex<Option<Store<MachineRequest>>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task_type: String,
}

fn phase_name(phase: Option<Phase>) -> &'static str {
    match phase {
        None | Some(Phase::Pending) => "Pending",
        Some(Phase::Provisioning) => "Provisioning",
        Some(Phase::Running) => "Running",
        Some(Phase::Stopped) => "Stopped",
        Some(Phase::Deleting) => "Deleting",
        Some(Phase::Failed) => "Failed",
    }
}

impl Collector for CacheGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let phases: Family<PhaseLabels, Gauge> = Family::default();
        let tasks: Family<TaskLabels, Gauge> = Family::default();
        // Every phase is present, at 0 when empty, so that dashboards see a stable set.
        for phase in [
            None,
            Some(Phase::Provisioning),
            Some(Phase::Running),
            Some(Phase::Stopped),
            Some(Phase::Deleting),
            Some(Phase::Failed),
        ] {
            let _ = phases.get_or_create(&PhaseLabels {
                phase: phase_name(phase),
            });
        }
        // Likewise every task type the controller starts.
        for kind in crate::reconcile::task_kind::TaskKind::ALL {
            let _ = tasks.get_or_create(&TaskLabels {
                task_type: kind.as_str().to_string(),
            });
        }
        let store = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for request in store.map(|s| s.state()).unwrap_or_default() {
            let status = request.status.as_ref();
            phases
                .get_or_create(&PhaseLabels {
                    phase: phase_name(status.and_then(|s| s.phase)),
                })
                .inc();
            if let Some(task) = status.and_then(|s| s.current_task.as_ref()) {
                tasks
                    .get_or_create(&TaskLabels {
                        task_type: task.task_type.clone(),
                    })
                    .inc();
            }
        }
        let metric = encoder.encode_descriptor(
            "machine_requests",
            "MachineRequests in the controller's cache, by phase",
            None,
            phases.metric_type(),
        )?;
        phases.encode(metric)?;
        let metric = encoder.encode_descriptor(
            "proxmox_tasks_in_flight",
            "Proxmox tasks that MachineRequests are waiting for, by task type",
            None,
            tasks.metric_type(),
        )?;
        tasks.encode(metric)
    }
}

/// The OpenMetrics text of `registry` (ending in `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would mean a broken metric, and an
    // empty answer is the safe response to it.
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        text.clear();
    }
    text
}

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Turns a concrete Proxmox API path into its template: `/nodes/pve1/qemu/100/config` becomes
/// `/nodes/{node}/qemu/{vmid}/config`. Names that identify objects (nodes, VMs, storages,
/// tasks, pools, users, ...) are replaced; the query string is dropped.
pub fn endpoint_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    let mut previous = "";
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let placeholder = match previous {
            "nodes" => Some("{node}"),
            "qemu" | "lxc" => Some("{vmid}"),
            "storage" => Some("{storage}"),
            "tasks" => Some("{upid}"),
            "pools" => Some("{pool}"),
            "users" => Some("{userid}"),
            "token" => Some("{tokenid}"),
            "roles" => Some("{role}"),
            "groups" => Some("{group}"),
            "snapshot" => Some("{snapname}"),
            "zones" => Some("{zone}"),
            "vnets" => Some("{vnet}"),
            _ => None,
        };
        out.push('/');
        if previous == "content" {
            // A volume id may hold slashes (`local:iso/x.iso`): the rest of the path is one.
            out.push_str("{volume}");
            break;
        }
        match placeholder {
            Some(p) => out.push_str(p),
            None if segment.chars().all(|c| c.is_ascii_digit()) => out.push_str("{id}"),
            None => out.push_str(segment),
        }
        previous = segment;
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A `tracing` layer that counts the `pve_request` spans of `pve-client` (method, path,
/// status, duration) into the Proxmox request metrics. Install it on the global subscriber
/// (see [`crate::logging::init`]); it sees those spans whatever the log level, through
/// [`ProxmoxRequestLayer::filter`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxmoxRequestLayer;

/// The fields of one `pve_request` span, kept in the span's extensions until it closes.
#[derive(Default)]
struct RequestSpan {
    method: String,
    path: String,
    status: Option<u64>,
    duration_ms: Option<u64>,
    opened: Option<Instant>,
}

impl Visit for RequestSpan {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "method" => self.method = value.to_string(),
            "path" => self.path = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "status" => self.status = Some(value),
            "duration_ms" => self.duration_ms = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `path = %req.path` arrives as a Display value through this method.
        match field.name() {
            "method" => self.method = format!("{value:?}"),
            "path" => self.path = format!("{value:?}"),
            _ => {}
        }
    }
}

const SPAN_NAME: &str = "pve_request";

impl ProxmoxRequestLayer {
    /// A per-layer filter that passes only `pve_request` spans, so that this layer works
    /// beside a log filter that hides debug spans.
    pub fn filter<S>() -> impl Filter<S> + Send + Sync + 'static {
        tracing_subscriber::filter::filter_fn(|meta| meta.is_span() && meta.name() == SPAN_NAME)
    }
}

impl<S> tracing_subscriber::Layer<S> for ProxmoxRequestLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN_NAME {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = RequestSpan {
            opened: Some(Instant::now()),
            ..RequestSpan::default()
        };
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<RequestSpan>() {
            values.record(fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(fields) = span.extensions_mut().remove::<RequestSpan>() else {
            return;
        };
        let endpoint = endpoint_template(&fields.path);
        let status = fields
            .status
            .map_or_else(|| "error".to_string(), |s| s.to_string());
        let seconds = match (fields.duration_ms, fields.opened) {
            (Some(ms), _) => ms as f64 / 1000.0,
            (None, Some(opened)) => opened.elapsed().as_secs_f64(),
            (None, None) => 0.0,
        };
        PROXMOX
            .requests
            .get_or_create(&RequestLabels {
                method: fields.method.clone(),
                endpoint: endpoint.clone(),
                status,
            })
            .inc();
        PROXMOX
            .latency
            .get_or_create(&EndpointLabels {
                method: fields.method,
                endpoint,
            })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer as _, Registry as Spans};

    use super::*;

    #[test]
    fn endpoint_templates_hide_names_and_ids() {
        for (path, template) in [
            (
                "/nodes/pve1/qemu/100/config",
                "/nodes/{node}/qemu/{vmid}/config",
            ),
            (
                "/nodes/pve-2/tasks/UPID:pve-2:0001:abc:qmstart:100:root@pam:/status",
                "/nodes/{node}/tasks/{upid}/status",
            ),
            ("/cluster/resources?type=vm", "/cluster/resources"),
            ("/cluster/nextid", "/cluster/nextid"),
            (
                "/nodes/pve1/storage/local/content/local:iso/x.iso",
                "/nodes/{node}/storage/{storage}/content/{volume}",
            ),
            ("/access/permissions", "/access/permissions"),
            ("/", "/"),
        ] {
            assert_eq!(endpoint_template(path), template, "{path}");
        }
    }

    #[test]
    fn pve_request_spans_are_counted_with_their_status_even_when_logs_hide_debug() {
        let subscriber = Spans::default()
            .with(ProxmoxRequestLayer.with_filter(ProxmoxRequestLayer::filter::<Spans>()));
        let metrics = Metrics::default();
        let labels = RequestLabels {
            method: "GET".into(),
            endpoint: "/nodes/{node}/qemu/{vmid}/config".into(),
            status: "200".into(),
        };
        let before = PROXMOX.requests.get_or_create(&labels).get();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::debug_span!(
                target: "pve_client::client",
                "pve_request",
                method = "GET",
                path = %"/nodes/unit-test/qemu/4242/config",
                status = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            );
            span.record("duration_ms", 12u64);
            span.record("status", 200u16);
        });
        assert_eq!(PROXMOX.requests.get_or_create(&labels).get(), before + 1);
        let text = encode(&metrics.registry());
        assert!(
            text.contains("pve_operator_proxmox_requests_total{method=\"GET\",endpoint=\"/nodes/{node}/qemu/{vmid}/config\",status=\"200\"}"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn reconciles_are_counted_by_outcome_and_errors_by_reason() {
        let metrics = Metrics::default();
        metrics.reconciled(MACHINE_REQUEST, Duration::from_millis(3), None);
        metrics.reconciled(
            MACHINE_REQUEST,
            Duration::from_millis(30),
            Some("MissingPrivilege"),
        );
        let text = encode(&metrics.registry());
        for line in [
            "pve_operator_reconciles_total{controller=\"machinerequest\",outcome=\"success\"} 1",
            "pve_operator_reconciles_total{controller=\"machinerequest\",outcome=\"error\"} 1",
            "pve_operator_reconcile_errors_total{controller=\"machinerequest\",reason=\"MissingPrivilege\"} 1",
            "pve_operator_reconcile_duration_seconds_count{controller=\"machinerequest\",outcome=\"error\"} 1",
            "pve_operator_machine_requests{phase=\"Running\"} 0",
            "pve_operator_proxmox_tasks_in_flight{task_type=\"qmcreate\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
