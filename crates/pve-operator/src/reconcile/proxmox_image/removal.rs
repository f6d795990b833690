//! Deleting a ProxmoxImage: policy `Keep` leaves its files; policy `Delete` removes them once no
//! MachineRequest in its namespace uses the image and no other ProxmoxImage on the same
//! identity names the same file, waiting (condition `Ready=False`, reason `InUse`) until then.

use std::time::Duration;

use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use pve_client::api::tasks::WaitOptions;
use pve_operator_api::{ImageDeletionPolicy, ImageState, MachineRequest, ProxmoxImage};

use super::super::Context;
use super::super::conditions::{Conditions, write_status_if_changed};
use super::super::status::types;
use super::{ImageError, images_used_by};
use crate::proxmox::Purpose;

/// The cleanup of `image`: `Ok` lets the finalizer go; [`ImageError::Waiting`] keeps it (the
/// finalizer helper releases it on any `Ok`) and comes back soon.
pub(super) async fn cleanup(
    image: &ProxmoxImage,
    ctx: &Context,
    api: &Api<ProxmoxImage>,
    store: &Store<ProxmoxImage>,
) -> Result<Action, ImageError> {
    if image.spec.deletion_policy == ImageDeletionPolicy::Keep {
        return Ok(Action::await_change());
    }
    let namespace = image.namespace().unwrap_or_default();
    let name = image.name_any();
    let requests: Api<MachineRequest> = Api::namespaced(ctx.kube.clone(), &namespace);
    let users: Vec<String> = requests
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|r| images_used_by(r).contains(&name))
        .map(ResourceExt::name_any)
        .collect();
    if !users.is_empty() {
        let message = format!(
            "deletionPolicy Delete: the files are removed once no MachineRequest uses the image; \
             {} still do ({})",
            users.len(),
            users.join(", ")
        );
        write_ready(image, api, "InUse", message.clone()).await?;
        return Err(ImageError::Waiting(message));
    }
    let Some(volid) = image.spec.volume_id() else {
        return Ok(Action::await_change());
    };
    if shared_with_another(image, &volid, ctx, store) {
        tracing::info!(image = %name, %volid, "another ProxmoxImage names the same file; leaving it");
        return Ok(Action::await_change());
    }
    let binding = match ctx
        .clusters
        .binding(
            &namespace,
            image.spec.cluster_ref.as_ref().map(|c| c.name.as_str()),
            Purpose::Cleanup,
        )
        .await
    {
        Ok(binding) => binding,
        Err(error) => {
            write_ready(image, api, error.reason(), error.to_string()).await?;
            return Err(ImageError::Waiting(error.to_string()));
        }
    };
    let status = image.status.clone().unwrap_or_default();
    let holders: Vec<&str> = status
        .nodes
        .iter()
        .filter(|n| n.state == ImageState::Present)
        .filter(|n| !status.shared || n.upid.is_some() || is_first(&status, &n.node))
        .map(|n| n.node.as_str())
        .collect();
    for node in holders {
        let pve = &binding.connection.pve;
        match pve.delete_volume(node, &image.spec.storage, &volid).await {
            // Removing a file is quick (an `imgdel` task): wait for it here, once, so that the
            // finalizer goes only when the file is gone.
            Ok(upid) => {
                let wait = WaitOptions {
                    timeout: Some(Duration::from_secs(60)),
                    ..WaitOptions::default()
                };
                match pve.wait_task(&upid, &wait).await {
                    Ok(exit) if exit.is_success() => {
                        tracing::info!(image = %name, %volid, %node, "removed the image's file")
                    }
                    Ok(exit) => {
                        let message = format!(
                            "removing {volid} on node {node} failed in Proxmox: {exit}; the \
                             ProxmoxImage stays until it succeeds"
                        );
                        write_ready(image, api, "RemovalFailed", message.clone()).await?;
                        return Err(ImageError::Waiting(message));
                    }
                    Err(error) => {
                        let message =
                            format!("waiting for the removal of {volid} on {node}: {error}");
                        write_ready(image, api, "RemovalFailed", message.clone()).await?;
                        return Err(ImageError::Waiting(message));
                    }
                }
            }
            Err(error) if error.kind() == pve_client::ErrorKind::NotFound => {}
            Err(error) => {
                let message = format!(
                    "removing {volid} on node {node} failed: {error}; the ProxmoxImage stays until \
                     it succeeds (or remove its finalizer {} to leave the file)",
                    super::FINALIZER
                );
                write_ready(image, api, "RemovalFailed", message.clone()).await?;
                return Err(ImageError::Waiting(message));
            }
        }
    }
    Ok(Action::await_change())
}

/// Whether the node is the first of a shared storage's entries (the one file's holder).
fn is_first(status: &pve_operator_api::ProxmoxImageStatus, node: &str) -> bool {
    status.nodes.first().is_some_and(|n| n.node == node)
}

/// Whether another ProxmoxImage (in any namespace) that is not being deleted names the same
/// file through the same identity.
fn shared_with_another(
    image: &ProxmoxImage,
    volid: &str,
    ctx: &Context,
    store: &Store<ProxmoxImage>,
) -> bool {
    // The identity behind an image's cluster (`None`: the default connection).
    let identity_of = |i: &ProxmoxImage| {
        i.spec.cluster_ref.as_ref().map(|c| {
            ctx.clusters
                .directory()
                .clusters
                .get(
                    &kube::runtime::reflector::ObjectRef::new(&c.name)
                        .within(&i.namespace().unwrap_or_default()),
                )
                .map(|c| c.spec.identity_ref.name.clone())
        })
    };
    let mine = identity_of(image);
    store.state().iter().any(|other| {
        other.uid() != image.uid()
            && other.metadata.deletion_timestamp.is_none()
            && other.spec.volume_id().as_deref() == Some(volid)
            && identity_of(other) == mine
    })
}

/// Writes the Ready condition of a deleting image.
async fn write_ready(
    image: &ProxmoxImage,
    api: &Api<ProxmoxImage>,
    reason: &str,
    message: String,
) -> Result<(), ImageError> {
    let mut status = image.status.clone().unwrap_or_default();
    let mut conditions = Conditions::new(&status.conditions, image.metadata.generation);
    conditions.set(types::READY, false, reason, message);
    let others: Vec<_> = status
        .conditions
        .iter()
        .filter(|c| c.type_ != types::READY)
        .cloned()
        .collect();
    status.conditions = conditions.list;
    status.conditions.extend(others);
    write_status_if_changed(api, &image.name_any(), image.status.as_ref(), &status).await?;
    Ok(())
}
