//! The ProxmoxImage controller: downloads an image into its storage on the nodes it is meant
//! for (`download-url`, once for a shared storage), tracks each download like any other task,
//! finds a file it downloaded before by its checksum-derived name (after a crash too), and
//! reports per node in status. Deletion follows `spec.deletionPolicy` (`removal`).

mod download;
mod removal;
pub mod targets;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pve_operator_api::{
    ImageNodeStatus, ImageState, MachineRequest, ProxmoxImage, ProxmoxImageStatus,
};
use tokio::sync::mpsc;

use super::Context;
use super::conditions::{Conditions, write_status_if_changed};
use super::status::types;
use crate::proxmox::{Binding, Purpose};

/// The finalizer that keeps a ProxmoxImage until its files are removed (policy `Delete`) or
/// left (policy `Keep`).
pub const FINALIZER: &str = "pve-operator.dev/image-cleanup";

/// How often an image that is everywhere is checked again (a file removed behind the
/// controller's back is downloaded again).
const RECHECK: Duration = Duration::from_secs(300);
/// How soon to look again while a download runs, should the task tracker not say so first.
const WHILE_DOWNLOADING: Duration = Duration::from_secs(30);

/// Runs the ProxmoxImage controller until `shutdown` completes. A download that ends (the task
/// tracker, through `triggers`) and a MachineRequest that starts or stops using an image
/// reconcile that image.
pub async fn run(
    ctx: Arc<Context>,
    (images, requests): (Api<ProxmoxImage>, Api<MachineRequest>),
    triggers: mpsc::UnboundedReceiver<ObjectRef<ProxmoxImage>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let triggers = futures::stream::unfold(triggers, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let controller = Controller::new(images, watcher::Config::default().any_semantic());
    let store = controller.store();
    let shared = Arc::new(Shared { store });
    controller
        .watches(requests, watcher::Config::default(), |request| {
            let namespace = request.namespace().unwrap_or_default();
            images_used_by(&request)
                .into_iter()
                .map(|name| ObjectRef::new(&name).within(&namespace))
                .collect::<Vec<_>>()
        })
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(
            move |image, ctx| {
                let shared = shared.clone();
                let instruments = ctx.instruments.clone();
                instruments.timed(
                    crate::ops::metrics::PROXMOX_IMAGE,
                    "ImageReconcileFailed",
                    reconcile(image, ctx, shared),
                )
            },
            |_, error, _| match error {
                finalizer::Error::CleanupFailed(ImageError::Waiting(_)) => {
                    Action::requeue(Duration::from_secs(10))
                }
                _ => Action::requeue(Duration::from_secs(30)),
            },
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ProxmoxImage reconcile failed");
            }
        })
        .await;
}

/// What every reconcile of the controller shares.
struct Shared {
    /// Every ProxmoxImage the controller sees (for files that several images name).
    store: Store<ProxmoxImage>,
}

/// The ProxmoxImages a request names (`spec.boot.image`, `spec.disks[].image`).
pub fn images_used_by(request: &MachineRequest) -> Vec<String> {
    let spec = &request.spec;
    let mut names: Vec<String> = spec
        .boot
        .image
        .iter()
        .chain(spec.disks.iter().filter_map(|d| d.image.as_ref()))
        .map(|i| i.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Why an image's reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Writing status or the finalizer failed.
    #[error("writing ProxmoxImage {0}")]
    Kube(#[from] kube::Error),
    /// The object has no namespace.
    #[error("a ProxmoxImage without a namespace")]
    NoNamespace,
    /// The deletion waits (for the image's users to go, or a removal to succeed); not a
    /// failure.
    #[error("deletion waits: {0}")]
    Waiting(String),
}

async fn reconcile(
    image: Arc<ProxmoxImage>,
    ctx: Arc<Context>,
    shared: Arc<Shared>,
) -> Result<Action, finalizer::Error<ImageError>> {
    let namespace = image
        .namespace()
        .ok_or(finalizer::Error::ApplyFailed(ImageError::NoNamespace))?;
    let api: Api<ProxmoxImage> = Api::namespaced(ctx.kube.clone(), &namespace);
    finalizer(&api, FINALIZER, image, |event| async {
        match event {
            finalizer::Event::Apply(image) => apply(&image, &ctx, &api).await,
            finalizer::Event::Cleanup(image) => {
                removal::cleanup(&image, &ctx, &api, &shared.store).await
            }
        }
    })
    .await
}

/// One pass: connect, check the allow-lists, plan the nodes, settle each download, write status.
async fn apply(
    image: &ProxmoxImage,
    ctx: &Context,
    api: &Api<ProxmoxImage>,
) -> Result<Action, ImageError> {
    let previous = image.status.clone().unwrap_or_default();
    let generation = image.metadata.generation;
    let mut status = ProxmoxImageStatus {
        volume: image.spec.volume_id(),
        observed_generation: generation,
        ..ProxmoxImageStatus::default()
    };
    let mut conditions = Conditions::new(&previous.conditions, generation);
    let action = match connect(image, ctx).await {
        Err((reason, message)) => {
            conditions.set(types::READY, false, reason, message);
            status.nodes = previous.nodes.clone();
            Action::requeue(Duration::from_secs(30))
        }
        Ok(binding) => {
            let pass = download::Pass {
                image,
                ctx,
                conn: &binding.connection,
                previous: &previous,
            };
            let outcome = pass.settle(&binding.policy).await;
            outcome.into_status(&mut status, &mut conditions)
        }
    };
    status.conditions = conditions.list;
    write_status_if_changed(api, &image.name_any(), image.status.as_ref(), &status).await?;
    Ok(action)
}

/// The image's cluster connection and allow-lists, or the Ready reason and message.
async fn connect(image: &ProxmoxImage, ctx: &Context) -> Result<Binding, (&'static str, String)> {
    let namespace = image.namespace().unwrap_or_default();
    let binding = ctx
        .clusters
        .binding(
            &namespace,
            image.spec.cluster_ref.as_ref().map(|c| c.name.as_str()),
            Purpose::Apply,
        )
        .await
        .map_err(|e| (e.reason(), e.to_string()))?;
    binding
        .policy
        .check_image(&image.spec)
        .map_err(|refusals| ("NotAllowed", refusals.to_string()))?;
    Ok(binding)
}

/// `2/3`: how many of the nodes have the image.
fn summary(nodes: &[ImageNodeStatus]) -> String {
    let present = nodes
        .iter()
        .filter(|n| n.state == ImageState::Present)
        .count();
    format!("{present}/{}", nodes.len())
}
