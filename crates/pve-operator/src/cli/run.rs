//! `pve-operator run`: the controller, with its operations endpoints (`/metrics`, `/healthz`,
//! `/readyz`) and, with `--leader-elect`, leader election on a Lease.

mod args;
mod controllers;
mod in_process;
mod scope;

pub use args::{OpsArgs, RunArgs, RunCommand};
pub use controllers::run_controllers;
pub use in_process::InProcessController;

use std::time::Duration;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::ops::leader::{LeaderElector, LeaseSettings};
use crate::ops::{Instruments, Role, server};

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
