//! `pve-operator run`: the controller, with its operations endpoints (`/metrics`, `/healthz`,
//! `/readyz`) and, with `--leader-elect`, leader election on a Lease.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use pve_client::PveConfig;
use pve_operator_api::{MachineRequest, ProxmoxCluster};

use crate::ops::leader::{LeaderElector, LeaseSettings};
use crate::ops::{Instruments, Role, server};
use crate::proxmox::ClusterRegistry;
use crate::proxmox::registry::Intervals;
use crate::reconcile::{self, Context, Settings};

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
    /// A namespace whose Secrets may be read as ProxmoxCluster credentials (repeatable, or
    /// comma-separated). ProxmoxClusters elsewhere are reported as not served, and no Secret
    /// outside these namespaces is read or watched. Default: every watched namespace.
    #[arg(
        long = "credentials-namespace",
        env = "PVE_OPERATOR_CREDENTIALS_NAMESPACES",
        value_delimiter = ','
    )]
    pub credentials_namespaces: Vec<String>,
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
    let credentials_namespaces = credentials_namespaces(&args)?;
    let mut registry = ClusterRegistry::new(default, kube.clone(), trigger, intervals);
    if let Some(namespaces) = &credentials_namespaces {
        registry = registry.with_credentials_namespaces(namespaces.clone());
    }
    let settings = Settings {
        resync: (args.resync_interval > 0).then(|| Duration::from_secs(args.resync_interval)),
        concurrency: args.concurrency,
        task_deadline: Duration::from_secs(args.task_deadline.max(1)),
        ..Settings::default()
    };
    let mut ctx = Context::new(kube.clone(), registry, settings);
    ctx.instruments = instruments;
    let ctx = Arc::new(ctx);
    let (requests, clusters): (Api<MachineRequest>, Api<ProxmoxCluster>) = match &args.namespace {
        Some(ns) => (
            Api::namespaced(kube.clone(), ns),
            Api::namespaced(kube.clone(), ns),
        ),
        None => (Api::all(kube.clone()), Api::all(kube.clone())),
    };
    // Secrets are watched only where credentials may live.
    let secrets: Vec<Api<Secret>> = match (&credentials_namespaces, &args.namespace) {
        (Some(namespaces), _) => namespaces
            .iter()
            .map(|ns| Api::namespaced(kube.clone(), ns))
            .collect(),
        (None, Some(ns)) => vec![Api::namespaced(kube.clone(), ns)],
        (None, None) => vec![Api::all(kube.clone())],
    };
    // One shutdown signal for both controllers.
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
        credentials_namespaces = %credentials_namespaces
            .as_ref()
            .map(|n| n.iter().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "(every watched namespace)".into()),
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
            reconcile::cluster::run(ctx, clusters, secrets, until_stopped()),
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
    tracing::info!("pve-operator controller stopped");
    Ok(())
}

/// The namespaces whose Secrets may hold ProxmoxCluster credentials, from
/// `--credentials-namespace`; `None` when every watched namespace may. Each must be watched.
fn credentials_namespaces(args: &RunArgs) -> anyhow::Result<Option<BTreeSet<String>>> {
    let namespaces: BTreeSet<String> = args
        .credentials_namespaces
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect();
    if namespaces.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = namespaces.iter().find(|ns| !is_namespace_name(ns)) {
        anyhow::bail!(
            "--credentials-namespace {bad:?} is not a namespace name (lowercase letters, digits and '-', at most 63); to read credentials in every watched namespace, leave the flag out (\"*\" is the Helm chart's way of saying that)"
        );
    }
    if let Some(watched) = &args.namespace
        && let Some(outside) = namespaces.iter().find(|ns| *ns != watched)
    {
        anyhow::bail!(
            "--credentials-namespace {outside} is outside the watched namespace {watched} (--namespace): ProxmoxClusters there are never seen; drop it or stop restricting --namespace"
        );
    }
    Ok(Some(namespaces))
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

    #[test]
    fn credentials_namespaces_are_repeatable_or_comma_separated_and_default_to_every_watched_one() {
        assert_eq!(credentials_namespaces(&run_args(&[])).expect("valid"), None);
        let listed = credentials_namespaces(&run_args(&[
            "--credentials-namespace=b,a",
            "--credentials-namespace",
            "c",
        ]))
        .expect("valid")
        .expect("restricted");
        assert_eq!(listed.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn a_credentials_namespace_outside_the_watched_one_is_refused_at_start_naming_both() {
        let same = run_args(&["--namespace=team-a", "--credentials-namespace=team-a"]);
        assert!(credentials_namespaces(&same).expect("valid").is_some());
        let outside = run_args(&["--namespace=team-a", "--credentials-namespace=team-b"]);
        let error = credentials_namespaces(&outside)
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("--credentials-namespace team-b") && error.contains("team-a"),
            "{error}"
        );
    }

    #[test]
    fn a_credentials_namespace_that_is_no_namespace_name_is_refused_at_start() {
        for bad in ["*", "Team_A", "-a", &"a".repeat(64)] {
            let args = run_args(&[&format!("--credentials-namespace={bad}")]);
            let error = credentials_namespaces(&args)
                .expect_err("refused")
                .to_string();
            assert!(error.contains("not a namespace name"), "{bad}: {error}");
        }
    }
}
