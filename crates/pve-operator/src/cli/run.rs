//! `pve-operator run`: the controller.

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
}

/// Connects to Kubernetes (and, lazily, to Proxmox) and runs the controller until SIGINT or
/// SIGTERM; in-flight reconciles finish first.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let kube = kube_client(args.kubeconfig.as_deref()).await?;
    run_with_client(args, kube, shutdown_signal()).await
}

/// Runs the controller with an existing client until `shutdown` completes.
pub async fn run_with_client(
    args: RunArgs,
    kube: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
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
    let intervals = Intervals {
        inventory: Duration::from_secs(args.inventory_interval.max(1)),
        tasks: Duration::from_millis(args.task_poll_interval.max(50)),
    };
    let registry = ClusterRegistry::new(default, kube.clone(), trigger, intervals);
    let settings = Settings {
        resync: (args.resync_interval > 0).then(|| Duration::from_secs(args.resync_interval)),
        concurrency: args.concurrency,
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(kube.clone(), registry, settings));
    let (requests, clusters, secrets): (Api<MachineRequest>, Api<ProxmoxCluster>, Api<Secret>) =
        match &args.namespace {
            Some(ns) => (
                Api::namespaced(kube.clone(), ns),
                Api::namespaced(kube.clone(), ns),
                Api::namespaced(kube, ns),
            ),
            None => (
                Api::all(kube.clone()),
                Api::all(kube.clone()),
                Api::all(kube),
            ),
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
        "pve-operator controller starting"
    );
    let controllers = async {
        tokio::join!(
            reconcile::run(ctx.clone(), requests, triggers, until_stopped()),
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
