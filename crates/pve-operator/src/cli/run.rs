//! `pve-operator run`: the controller, with its operations endpoints (`/metrics`, `/healthz`,
//! `/readyz`) and, with `--leader-elect`, leader election on a Lease.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PartialObjectMeta;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};
use pve_client::PveConfig;
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity};

use crate::ops::leader::{LeaderElector, LeaseSettings};
use crate::ops::{Instruments, Role, server};
use crate::proxmox::ClusterRegistry;
use crate::proxmox::registry::{DefaultIdentity, Directory, Intervals};
use crate::reconcile::{self, Context, Settings};
use crate::tenancy::NamespaceRule;
use crate::tenancy::secrets::SecretCache;

/// Options of `pve-operator run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// kubeconfig file; in-cluster configuration (or $KUBECONFIG) when omitted.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The default Proxmox connection, in the source documents' `proxmox:` format (PVE_*
    /// environment variables override its keys). Requests without spec.clusterRef use it.
    #[arg(long, env = "PVE_OPERATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Watch only this namespace (all namespaces when omitted).
    #[arg(long, env = "PVE_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// The namespace of the Secrets that ProxmoxIdentities name (the controller's own); by
    /// default $POD_NAMESPACE, else the client's default namespace (in a pod: its own). No
    /// other Secret is ever read.
    #[arg(long, env = "PVE_OPERATOR_IDENTITY_NAMESPACE")]
    pub identity_namespace: Option<String>,
    /// The namespaces whose MachineRequests may use the default connection (--config) without
    /// a clusterRef (repeatable, or comma-separated; "*": every namespace). Default: the watched
    /// namespace (--namespace), else the controller's own namespace.
    #[arg(
        long = "default-allowed-namespaces",
        env = "PVE_OPERATOR_DEFAULT_ALLOWED_NAMESPACES",
        value_delimiter = ','
    )]
    pub default_allowed_namespaces: Vec<String>,
    /// Serve only the ProxmoxIdentities with these labels (`key=value`, repeatable or
    /// comma-separated), e.g. to run one controller per group of identities. Default: every
    /// identity.
    #[arg(long = "identity-selector", value_delimiter = ',')]
    pub identity_selector: Vec<String>,
    /// MachineRequests reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// How often each Proxmox cluster's shared inventory is read, in seconds.
    #[arg(long, default_value_t = 10)]
    pub inventory_interval: u64,
    /// How often in-flight Proxmox tasks are polled, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub task_poll_interval: u64,
    /// Reconcile every request this often even when nothing changed, in seconds (0: never).
    #[arg(long, default_value_t = 3600)]
    pub resync_interval: u64,
    /// Seconds that in-flight reconciles may take to finish after SIGTERM.
    #[arg(long, default_value_t = 20)]
    pub shutdown_grace: u64,
    /// At most this many of the controller's Proxmox tasks (create, clone, start, ...) run at once
    /// on one node.
    #[arg(long, default_value_t = 8)]
    pub max_tasks_per_node: usize,
    /// Seconds a Proxmox task may run before its request reports it as overdue (a TaskOverdue
    /// condition and a Warning Event naming the UPID); the controller keeps waiting for it.
    #[arg(long, default_value_t = 1800)]
    pub task_deadline: u64,
}

impl Default for RunArgs {
    /// What `pve-operator run` without flags and without environment variables has (for the
    /// controller embedded in tests, the demo and benchmarks: set what differs, keep the rest).
    fn default() -> Self {
        Self {
            kubeconfig: None,
            config: None,
            namespace: None,
            identity_namespace: None,
            default_allowed_namespaces: Vec::new(),
            identity_selector: Vec::new(),
            concurrency: 16,
            inventory_interval: 10,
            task_poll_interval: 500,
            resync_interval: 3600,
            shutdown_grace: 20,
            max_tasks_per_node: 8,
            task_deadline: 1800,
        }
    }
}

/// Options of `pve-operator run` about operating it: metrics, probes, leader election.
#[derive(Debug, Args, Clone)]
pub struct OpsArgs {
    /// Address of the operations endpoints: /metrics (OpenMetrics), /healthz and /readyz.
    #[arg(
        long,
        env = "PVE_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Run the controllers only while holding a coordination.k8s.io Lease, so that several
    /// replicas are safe (one leads, the others stand by).
    #[arg(long, env = "PVE_OPERATOR_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "pve-operator-leader")]
    pub lease_name: String,
    /// The Lease's namespace; by default $POD_NAMESPACE, else the client's default namespace
    /// (in a pod: its own).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a standby waits for a silent leader before taking over, in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// How often the leader renews the Lease and a standby tries to take it, in seconds.
    #[arg(long, default_value_t = 5)]
    pub lease_renew_interval: u64,
    /// This replica's identity in the Lease; by default $POD_NAME, else the host name and
    /// process id.
    #[arg(long, env = "POD_NAME")]
    pub leader_identity: Option<String>,
}

/// Everything `pve-operator run` takes.
#[derive(Debug, Args, Clone)]
pub struct RunCommand {
    /// The controllers' options.
    #[command(flatten)]
    pub controller: RunArgs,
    /// Metrics, probes and leader election.
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// Connects to Kubernetes (and, lazily, to Proxmox) and runs the controller with its
/// operations endpoints until SIGINT or SIGTERM; in-flight reconciles finish first.
pub async fn run(command: RunCommand) -> anyhow::Result<()> {
    let kube = kube_client(command.controller.kubeconfig.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(command.ops.metrics_addr)
        .await
        .with_context(|| format!("listening on --metrics-addr {}", command.ops.metrics_addr))?;
    run_operator(command, kube, listener, shutdown_signal()).await
}

/// Runs the operator with an existing client until `shutdown` completes: the operations
/// endpoints on `listener`, and the controllers (only while leading, with `--leader-elect`).
/// Returns an error when leadership is lost (the process should exit and start over as a
/// standby) or the endpoints fail.
pub async fn run_operator(
    command: RunCommand,
    kube: Client,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    let instruments = Instruments::default();
    let router = server::router(instruments.metrics.registry(), instruments.health.clone());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    // Everything runs in this task (no spawned server or renewer), so that dropping or aborting
    // it stops all of it, as a crash of the process would.
    let work = async {
        let result = if command.ops.leader_elect {
            lead(command, kube, instruments.clone(), until_stopped).await
        } else {
            instruments.health.set_role(Role::Leading);
            run_controllers(
                command.controller,
                kube,
                until_stopped(),
                instruments.clone(),
            )
            .await
        };
        instruments.health.set_role(Role::Stopping);
        let _ = stop_server.send(());
        result
    };
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
        // Keep the sender alive: the receivers wait for `true`, not for a closed channel.
        std::future::pending::<()>().await;
    };
    let serve = server::serve(listener, router, async {
        let _ = server_stopped.await;
    });
    let (result, served) = tokio::select! {
        both = async { tokio::join!(work, serve) } => both,
        _ = signal => unreachable!("the signal future never completes"),
    };
    if let Err(error) = served {
        tracing::warn!(%error, "the operations endpoints failed");
    }
    result
}

/// Stands by until this replica holds the Lease, then runs the controllers while renewing it.
async fn lead<F>(
    command: RunCommand,
    kube: Client,
    instruments: Instruments,
    until_stopped: impl Fn() -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let ops = &command.ops;
    let settings = LeaseSettings {
        name: ops.lease_name.clone(),
        namespace: ops
            .lease_namespace
            .clone()
            .unwrap_or_else(|| kube.default_namespace().to_string()),
        identity: ops.leader_identity.clone().unwrap_or_else(default_identity),
        lease_duration: Duration::from_secs(ops.lease_duration.max(1)),
        renew_every: Duration::from_secs(ops.lease_renew_interval.max(1)),
    };
    anyhow::ensure!(
        settings.renew_every < settings.renew_deadline(),
        "--lease-renew-interval ({}s) must be well below --lease-duration ({}s): the leader stops after failing to renew for two thirds of the lease duration",
        ops.lease_renew_interval,
        ops.lease_duration
    );
    tracing::info!(
        lease = %settings.name,
        namespace = %settings.namespace,
        identity = %settings.identity,
        "leader election: standing by for the Lease"
    );
    let mut elector = LeaderElector::new(kube.clone(), settings);
    instruments.health.set_role(Role::Standby);
    tokio::select! {
        _ = elector.acquire() => {}
        _ = until_stopped() => return Ok(()),
    }
    instruments.health.set_role(Role::Leading);
    // The controllers run in this task, beside the renewals. A shutdown (SIGTERM) stops them
    // gracefully: in-flight reconciles finish within --shutdown-grace while the Lease is still
    // renewed, and then it is released. Losing the Lease stops them at once instead: their
    // future is dropped (in-flight reconciles are cancelled, nothing more is sent to Proxmox or
    // Kubernetes) no later than the renew deadline after the last successful renewal, before a
    // standby may take over.
    let mut controllers = Box::pin(run_controllers(
        command.controller,
        kube,
        until_stopped(),
        instruments,
    ));
    let lost = tokio::select! {
        lost = elector.keep_renewing() => lost,
        result = &mut controllers => {
            elector.release().await;
            return result;
        }
        () = until_stopped() => {
            tokio::select! {
                lost = elector.keep_renewing() => lost,
                result = &mut controllers => {
                    elector.release().await;
                    return result;
                }
            }
        }
    };
    // Dropping the controllers cancels whatever they were doing.
    drop(controllers);
    tracing::error!(error = %lost, "lost the leader Lease; stopped the controllers");
    anyhow::bail!("leadership lost: {lost}")
}

/// `<host name>-<process id>`, the identity when no POD_NAME is given.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pve-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Runs the controllers with an existing client until `shutdown` completes, without
/// operations endpoints or leader election (tests and the demo).
pub async fn run_with_client(
    args: RunArgs,
    kube: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let instruments = Instruments::default();
    instruments.health.set_role(Role::Leading);
    run_controllers(args, kube, shutdown, instruments).await
}

/// Runs both controllers until `shutdown` completes, reporting into `instruments`.
pub async fn run_controllers(
    args: RunArgs,
    kube: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    instruments: Instruments,
) -> anyhow::Result<()> {
    let default =
        match &args.config {
            Some(path) => Some(PveConfig::load(Some(path)).with_context(|| {
                format!("loading the Proxmox connection from {}", path.display())
            })?),
            None => None,
        };
    if let Some(config) = &default
        && matches!(config.tls, pve_client::TlsTrust::InsecureSkipVerify)
    {
        tracing::warn!(
            "insecureSkipVerify is set: the Proxmox certificate is not verified; pin its fingerprint or give a CA bundle instead"
        );
    }
    let (trigger, triggers) = tokio::sync::mpsc::unbounded_channel();
    // Settings without a flag keep their defaults (the update is needless while every field
    // has a flag, and keeps this compiling when one is added).
    #[allow(clippy::needless_update)]
    let intervals = Intervals {
        inventory: Duration::from_secs(args.inventory_interval.max(1)),
        tasks: Duration::from_millis(args.task_poll_interval.max(50)),
        max_tasks_per_node: args.max_tasks_per_node.max(1),
    };
    let identity_namespace = args
        .identity_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|ns| !ns.trim().is_empty())
        .unwrap_or_else(|| kube.default_namespace().to_string());
    anyhow::ensure!(
        is_namespace_name(&identity_namespace),
        "--identity-namespace {identity_namespace:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
    );
    let default_namespaces = default_allowed_namespaces(&args, &identity_namespace)?;
    let identity_labels = identity_labels(&args)?;
    let identity_watch = watcher::Config::default().labels(&label_selector(&identity_labels));
    let default = default.map(|config| DefaultIdentity {
        config,
        namespaces: default_namespaces.clone(),
    });
    let mut background = Vec::new();
    let directory = Directory {
        clusters: reflected_with(
            &mut background,
            cluster_api(&kube, &args),
            watcher::Config::default(),
        ),
        identities: reflected_with(
            &mut background,
            Api::<ProxmoxIdentity>::all(kube.clone()),
            identity_watch.clone(),
        ),
        namespaces: reflected_with(
            &mut background,
            Api::<PartialObjectMeta<Namespace>>::all(kube.clone()),
            watcher::Config::default(),
        ),
    };
    let secrets = Arc::new(SecretCache::new(kube.clone(), &identity_namespace));
    let registry = ClusterRegistry::new(
        default,
        kube.clone(),
        trigger,
        intervals,
        directory,
        secrets,
    )
    .with_identity_labels(identity_labels);
    let settings = Settings {
        resync: (args.resync_interval > 0).then(|| Duration::from_secs(args.resync_interval)),
        concurrency: args.concurrency,
        task_deadline: Duration::from_secs(args.task_deadline.max(1)),
        ..Settings::default()
    };
    let mut ctx = Context::new(kube.clone(), registry, settings);
    ctx.instruments = instruments;
    let ctx = Arc::new(ctx);
    let requests: Api<MachineRequest> = match &args.namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    };
    let clusters = cluster_api(&kube, &args);
    let identities: Api<ProxmoxIdentity> = Api::all(kube.clone());
    // One shutdown signal for every controller.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        identity_namespace = %identity_namespace,
        default_allowed_namespaces = %describe_rule(&default_namespaces),
        "pve-operator controller starting"
    );
    let controllers = async {
        tokio::join!(
            reconcile::run(
                ctx.clone(),
                requests,
                clusters.clone(),
                triggers,
                until_stopped()
            ),
            reconcile::cluster::run(
                ctx.clone(),
                clusters,
                (identities.clone(), identity_watch.clone()),
                until_stopped()
            ),
            reconcile::identity::run(ctx, (identities, identity_watch), until_stopped()),
        )
    };
    // In-flight reconciles get a bounded grace period: a stop during start-up (before the
    // caches are filled) would otherwise wait forever for them.
    let grace = Duration::from_secs(args.shutdown_grace);
    let deadline = async {
        until_stopped().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = controllers => {}
        _ = deadline => tracing::warn!(?grace, "in-flight reconciles did not finish within the grace period; stopping anyway"),
    }
    for task in background {
        task.abort();
    }
    tracing::info!("pve-operator controller stopped");
    Ok(())
}

/// The namespaces the default connection serves, from `--default-allowed-namespaces`: `*`
/// alone for every namespace; by default the watched namespace, else the controller's own.
fn default_allowed_namespaces(
    args: &RunArgs,
    own_namespace: &str,
) -> anyhow::Result<NamespaceRule> {
    let listed: BTreeSet<String> = args
        .default_allowed_namespaces
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect();
    if listed.contains("*") {
        anyhow::ensure!(
            listed.len() == 1,
            "--default-allowed-namespaces: \"*\" already means every namespace; give it alone"
        );
        return Ok(NamespaceRule::All);
    }
    if let Some(bad) = listed.iter().find(|ns| !is_namespace_name(ns)) {
        anyhow::bail!(
            "--default-allowed-namespaces {bad:?} is not a namespace name (lowercase letters, digits and '-', at most 63), nor \"*\" (every namespace)"
        );
    }
    if let Some(watched) = &args.namespace
        && let Some(outside) = listed.iter().find(|ns| *ns != watched)
    {
        anyhow::bail!(
            "--default-allowed-namespaces {outside} is outside the watched namespace {watched} (--namespace): MachineRequests there are never seen; drop it or stop restricting --namespace"
        );
    }
    if listed.is_empty() {
        let own = args
            .namespace
            .clone()
            .unwrap_or_else(|| own_namespace.to_string());
        return Ok(NamespaceRule::names([own]));
    }
    Ok(NamespaceRule::names(listed))
}

/// The rule for the start-up log line.
fn describe_rule(rule: &NamespaceRule) -> String {
    match rule {
        NamespaceRule::All => "*".to_string(),
        NamespaceRule::Allowed(allowed) => allowed.list.join(","),
    }
}

/// The ProxmoxClusters the controller watches: in `--namespace`, or everywhere.
fn cluster_api(kube: &Client, args: &RunArgs) -> Api<ProxmoxCluster> {
    match &args.namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// `--identity-selector` as labels.
fn identity_labels(args: &RunArgs) -> anyhow::Result<BTreeMap<String, String>> {
    args.identity_selector
        .iter()
        .map(|pair| pair.trim())
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--identity-selector {pair:?} is not key=value")
            })?;
            anyhow::ensure!(
                !key.is_empty() && is_label_text(key) && is_label_text(value),
                "--identity-selector {pair:?}: keys and values are label names (letters, digits, '-', '_', '.', '/')"
            );
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

fn is_label_text(text: &str) -> bool {
    text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Labels as a label selector (`a=b,c=d`).
fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A store of `api`'s objects, kept current by a watch (with `config`: a label selector, say)
/// that runs in `background`.
fn reflected_with<K>(
    background: &mut Vec<tokio::task::JoinHandle<()>>,
    api: Api<K>,
    config: watcher::Config,
) -> kube::runtime::reflector::Store<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = kube::runtime::watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                tracing::debug!(%error, "a watch of the directory failed; retrying");
            }
        });
    background.push(tokio::spawn(stream));
    reader
}

/// A DNS-1123 label, as a namespace name must be.
fn is_namespace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A Kubernetes client from a kubeconfig file, or inferred (in-cluster, $KUBECONFIG, ~/.kube).
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?
        }
        None => Config::infer()
            .await
            .context("no Kubernetes configuration found (in-cluster, $KUBECONFIG or ~/.kube/config); pass --kubeconfig")?,
    };
    Ok(Client::try_from(config)?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_args(argv: &[&str]) -> RunArgs {
        let mut full = vec!["pve-operator", "run"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).expect("arguments parse").command {
            Command::Run(command) => command.controller,
            _ => unreachable!("the run command"),
        }
    }

    fn listed(rule: NamespaceRule) -> Vec<String> {
        match rule {
            NamespaceRule::Allowed(allowed) => allowed.list,
            NamespaceRule::All => vec!["*".into()],
        }
    }

    #[test]
    fn run_args_default_is_what_the_flags_default_to() {
        let parsed = run_args(&[]);
        let default = RunArgs::default();
        // Environment variables aside (KUBECONFIG and the like may be set where tests run).
        assert_eq!(
            (
                parsed.concurrency,
                parsed.inventory_interval,
                parsed.task_poll_interval,
                parsed.resync_interval,
                parsed.shutdown_grace,
                parsed.max_tasks_per_node,
                parsed.task_deadline,
                parsed.identity_selector,
            ),
            (
                default.concurrency,
                default.inventory_interval,
                default.task_poll_interval,
                default.resync_interval,
                default.shutdown_grace,
                default.max_tasks_per_node,
                default.task_deadline,
                default.identity_selector,
            )
        );
    }

    #[test]
    fn the_default_connection_serves_the_watched_or_the_controllers_own_namespace_unless_told() {
        let own = default_allowed_namespaces(&run_args(&[]), "pve-operator").expect("valid");
        assert_eq!(listed(own), ["pve-operator"]);
        let watched = run_args(&["--namespace=team-a"]);
        assert_eq!(
            listed(default_allowed_namespaces(&watched, "pve-operator").expect("valid")),
            ["team-a"]
        );
        let many = run_args(&[
            "--default-allowed-namespaces=b,a",
            "--default-allowed-namespaces",
            "c",
        ]);
        assert_eq!(
            listed(default_allowed_namespaces(&many, "x").expect("valid")),
            ["a", "b", "c"]
        );
        let all = run_args(&["--default-allowed-namespaces=*"]);
        assert_eq!(
            default_allowed_namespaces(&all, "x").expect("valid"),
            NamespaceRule::All
        );
        assert!(NamespaceRule::All.allows("anything", None));
    }

    #[test]
    fn a_default_allowed_namespace_outside_the_watched_one_is_refused_at_start_naming_both() {
        let outside = run_args(&["--namespace=team-a", "--default-allowed-namespaces=team-b"]);
        let error = default_allowed_namespaces(&outside, "x")
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("team-b") && error.contains("team-a"),
            "{error}"
        );
    }

    #[test]
    fn a_default_allowed_namespace_that_is_no_namespace_name_is_refused_at_start() {
        for bad in ["Team_A", "-a", &"a".repeat(64), "*,a"] {
            let args = run_args(&[&format!("--default-allowed-namespaces={bad}")]);
            let error = default_allowed_namespaces(&args, "x")
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("not a namespace name") || error.contains("give it alone"),
                "{bad}: {error}"
            );
        }
    }
}
