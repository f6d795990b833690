//! The controllers themselves: the directory watches, the connection registry and the four
//! reconcile loops (MachineRequests, ProxmoxImages, ProxmoxClusters, ProxmoxIdentities), until
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use pve_client::PveConfig;
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity, ProxmoxImage};
use tokio::sync::mpsc::UnboundedReceiver;

use super::RunArgs;
use super::scope::{
    default_allowed_namespaces, describe_rule, identity_labels, is_namespace_name, label_selector,
};
use crate::ops::Instruments;
use crate::proxmox::registry::{DefaultIdentity, Directory, Intervals};
use crate::proxmox::{ClusterRegistry, Wake};
use crate::reconcile::{self, Context, Settings};
use crate::tenancy::secrets::SecretCache;

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
    let (trigger, wakes) = tokio::sync::mpsc::unbounded_channel();
    let (request_triggers, image_triggers) = split_wakes(wakes);
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
        images: reflected_with(
            &mut background,
            image_api(&kube, &args),
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
                requests.clone(),
                (clusters.clone(), image_api(&kube, &args)),
                request_triggers,
                until_stopped()
            ),
            reconcile::proxmox_image::run(
                ctx.clone(),
                (image_api(&kube, &args), requests),
                image_triggers,
                until_stopped()
            ),
            reconcile::proxmox_cluster::run(
                ctx.clone(),
                clusters,
                (identities.clone(), identity_watch.clone()),
                until_stopped()
            ),
            reconcile::proxmox_identity::run(ctx, (identities, identity_watch), until_stopped()),
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

/// The receivers of the MachineRequest and the ProxmoxImage controllers, fed from the one
/// channel the task trackers and inventories send to.
fn split_wakes(
    mut wakes: UnboundedReceiver<Wake>,
) -> (
    UnboundedReceiver<ObjectRef<MachineRequest>>,
    UnboundedReceiver<ObjectRef<ProxmoxImage>>,
) {
    let (requests, request_rx) = tokio::sync::mpsc::unbounded_channel();
    let (images, image_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(wake) = wakes.recv().await {
            let sent = match wake {
                Wake::Request(r) => requests.send(r).is_ok(),
                Wake::Image(i) => images.send(i).is_ok(),
            };
            if !sent {
                break;
            }
        }
    });
    (request_rx, image_rx)
}

/// The ProxmoxImages the controller watches: in `--namespace`, or everywhere.
fn image_api(kube: &Client, args: &RunArgs) -> Api<ProxmoxImage> {
    match &args.namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// The ProxmoxClusters the controller watches: in `--namespace`, or everywhere.
fn cluster_api(kube: &Client, args: &RunArgs) -> Api<ProxmoxCluster> {
    match &args.namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// A store of `api`'s objects (trimmed: [`cache::trim`](crate::reconcile::cache::trim)),
/// kept current by a watch (with `config`: a label selector, say) that runs in `background`.
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
        .modify(crate::reconcile::cache::trim)
        .reflect(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                tracing::debug!(%error, "a watch of the directory failed; retrying");
            }
        });
    background.push(tokio::spawn(stream));
    reader
}
