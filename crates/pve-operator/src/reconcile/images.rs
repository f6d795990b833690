//! The ProxmoxImages a MachineRequest uses (`spec.boot.image`, `spec.disks[].image`): found in
//! its namespace, checked (content, cluster), turned into volume IDs for the desired VM, and
//! the nodes where every one of them is present (placement may only choose those).

use std::collections::BTreeSet;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use pve_operator_api::{
    ImageContent, ImageState, MachineRequestSpec, ProxmoxImage, ProxmoxImageSpec,
};

use crate::vmspec::ImageVolumes;

/// The images of a request, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedImages {
    /// The volume IDs, for the desired VM.
    pub volumes: ImageVolumes,
    /// The nodes where every image is present (`None`: the request uses no image).
    pub present_on: Option<BTreeSet<String>>,
    /// Each image's storage, with the request's field, for the allow-lists.
    pub storages: Vec<(String, String)>,
    /// The images by name, for the privilege check.
    pub named: Vec<(String, ProxmoxImageSpec)>,
}

/// Why a request cannot use its images yet, or at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageWait {
    /// Not there yet (missing, downloading): the reason and message of `Ready=False`.
    Pending(String),
    /// An image's download failed.
    Failed(String),
    /// The spec names an image it cannot use (wrong content, another cluster).
    Unusable(String),
}

/// One image reference of the spec: its field, the name, and the content it must have.
fn references(spec: &MachineRequestSpec) -> Vec<(String, String, ImageContent)> {
    let mut out = Vec::new();
    if let Some(image) = &spec.boot.image {
        out.push((
            "spec.boot.image".to_string(),
            image.name.clone(),
            ImageContent::Iso,
        ));
    }
    for (i, disk) in spec.disks.iter().enumerate() {
        if let Some(image) = &disk.image {
            out.push((
                format!("spec.disks[{i}].image"),
                image.name.clone(),
                ImageContent::Import,
            ));
        }
    }
    out
}

/// Resolves the images of `spec` (a request in `namespace` on ProxmoxCluster `cluster`) from
/// `store`. With `need_presence`, an image that is on no node yet is a wait (before create);
/// without, only its volume ID is needed (a VM that exists already).
pub fn resolve(
    spec: &MachineRequestSpec,
    namespace: &str,
    cluster: Option<&str>,
    store: &Store<ProxmoxImage>,
    need_presence: bool,
) -> Result<ResolvedImages, ImageWait> {
    let mut resolved = ResolvedImages::default();
    for (field, name, content) in references(spec) {
        let Some(image) = store.get(&ObjectRef::new(&name).within(namespace)) else {
            return Err(ImageWait::Pending(format!(
                "{field} names ProxmoxImage {name:?}, which does not exist in namespace \
                 {namespace:?} (yet)"
            )));
        };
        if image.spec.content != content {
            let (wanted, takes) = match content {
                ImageContent::Iso => ("iso", "an ISO to boot from"),
                ImageContent::Import => ("import", "a disk image to import"),
            };
            return Err(ImageWait::Unusable(format!(
                "{field} names ProxmoxImage {name:?}, whose content is not {wanted}: {field} \
                 takes {takes}"
            )));
        }
        let image_cluster = image.spec.cluster_ref.as_ref().map(|c| c.name.as_str());
        if cluster != image_cluster {
            let describe = |c: Option<&str>| {
                c.map_or("the controller's default connection".to_string(), |c| {
                    format!("ProxmoxCluster {c:?}")
                })
            };
            return Err(ImageWait::Unusable(format!(
                "{field} names ProxmoxImage {name:?}, which is on {}, not on the request's {}",
                describe(image_cluster),
                describe(cluster)
            )));
        }
        let Some(volid) = image.spec.volume_id() else {
            return Err(ImageWait::Unusable(format!(
                "ProxmoxImage {name:?} ({field}) has no known format"
            )));
        };
        resolved
            .storages
            .push((field.clone(), image.spec.storage.clone()));
        resolved.named.push((name.clone(), image.spec.clone()));
        match content {
            ImageContent::Iso => resolved.volumes.boot = Some(volid),
            ImageContent::Import => {
                resolved.volumes.disks.insert(field.clone(), volid);
            }
        }
        if need_presence {
            let present = present_nodes(&image)?;
            resolved.present_on = Some(match resolved.present_on.take() {
                None => present,
                Some(before) => before.intersection(&present).cloned().collect(),
            });
            if resolved.present_on.as_ref().is_some_and(BTreeSet::is_empty) {
                return Err(ImageWait::Pending(format!(
                    "the images the request uses are not all on one node yet (last checked: \
                     ProxmoxImage {name:?})"
                )));
            }
        }
    }
    Ok(resolved)
}

/// The nodes where `image` is present, or why there are none.
fn present_nodes(image: &ProxmoxImage) -> Result<BTreeSet<String>, ImageWait> {
    let name = image.name_any();
    let status = image.status.clone().unwrap_or_default();
    let present: BTreeSet<String> = status
        .nodes
        .iter()
        .filter(|n| n.state == ImageState::Present)
        .map(|n| n.node.clone())
        .collect();
    if !present.is_empty() {
        return Ok(present);
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == super::status::types::READY);
    let failed = status.nodes.iter().any(|n| n.state == ImageState::Failed)
        || ready.is_some_and(|c| c.status == "False" && c.reason == "NotAllowed");
    let why = ready.map_or_else(
        || "not reconciled yet".to_string(),
        |c| format!("{}: {}", c.reason, c.message),
    );
    Err(if failed {
        ImageWait::Failed(format!("ProxmoxImage {name:?} is on no node: {why}"))
    } else {
        ImageWait::Pending(format!(
            "waiting for ProxmoxImage {name:?} to be downloaded ({why})"
        ))
    })
}
