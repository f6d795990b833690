//! One pass over an image's nodes: which have the file (storage content), which download it
//! (a tracked task), which failed (Proxmox's message), and new downloads where none is.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use pve_client::api::download::{Checksum, ChecksumAlgorithm, DownloadContent, DownloadUrl};
use pve_client::api::tasks::{TaskListQuery, TaskSource};
use pve_client::{PveClient, Upid};
use pve_operator_api::{
    ImageContent, ImageNodeStatus, ImageState, ProxmoxImage, ProxmoxImageStatus,
};

use super::super::Context;
use super::super::RETRY_ANNOTATION;
use super::super::conditions::Conditions;
use super::super::status::types;
use super::targets::{self, StorageOnNode, Targets};
use super::{RECHECK, WHILE_DOWNLOADING, summary};
use crate::privileges::{VmScope, missing_needs, needs_with_images};
use crate::proxmox::{ClusterRuntime, Wake};
use crate::tenancy::policy::Policy;

/// One pass over one image.
pub(super) struct Pass<'a> {
    pub image: &'a ProxmoxImage,
    pub ctx: &'a Context,
    pub conn: &'a ClusterRuntime,
    pub previous: &'a ProxmoxImageStatus,
}

/// What the pass found.
pub(super) enum Outcome {
    /// The image cannot go anywhere (or Proxmox could not be asked): Ready=False with reason.
    Blocked(&'static str, String),
    /// Each node's state.
    Nodes {
        shared: bool,
        nodes: Vec<ImageNodeStatus>,
    },
}

impl Outcome {
    /// Fills `status` and the Ready condition; the action says when to look again.
    pub(super) fn into_status(
        self,
        status: &mut ProxmoxImageStatus,
        conditions: &mut Conditions<'_>,
    ) -> Action {
        match self {
            Outcome::Blocked(reason, message) => {
                conditions.set(types::READY, false, reason, message);
                Action::requeue(Duration::from_secs(30))
            }
            Outcome::Nodes { shared, nodes } => {
                let count = |state| nodes.iter().filter(|n| n.state == state).count();
                let (present, downloading, failed) = (
                    count(ImageState::Present),
                    count(ImageState::Downloading),
                    count(ImageState::Failed),
                );
                let action = if failed > 0 {
                    let failures: Vec<String> = nodes
                        .iter()
                        .filter(|n| n.state == ImageState::Failed)
                        .map(|n| {
                            format!("{}: {}", n.node, n.message.as_deref().unwrap_or("failed"))
                        })
                        .collect();
                    conditions.set(
                        types::READY,
                        false,
                        "DownloadFailed",
                        format!(
                            "the download failed on {} of {} node(s) ({}); fix the cause, then \
                             set the {RETRY_ANNOTATION} annotation to a new value to try again",
                            failed,
                            nodes.len(),
                            failures.join("; ")
                        ),
                    );
                    if downloading > 0 {
                        Action::requeue(WHILE_DOWNLOADING)
                    } else {
                        Action::await_change()
                    }
                } else if present == nodes.len() {
                    conditions.set(
                        types::READY,
                        true,
                        "Present",
                        format!("the image is on {present} node(s), verified by its checksum"),
                    );
                    Action::requeue(RECHECK)
                } else if downloading > 0 {
                    conditions.set(
                        types::READY,
                        false,
                        "Downloading",
                        format!(
                            "Proxmox is downloading the image on {downloading} node(s); \
                             present on {present} of {}",
                            nodes.len()
                        ),
                    );
                    Action::requeue(WHILE_DOWNLOADING)
                } else {
                    conditions.set(
                        types::READY,
                        false,
                        "Pending",
                        format!(
                            "waiting to download (no free task slot on the node(s)); present on \
                             {present} of {}",
                            nodes.len()
                        ),
                    );
                    Action::requeue(Duration::from_secs(5))
                };
                status.shared = shared;
                status.summary = Some(summary(&nodes));
                status.nodes = nodes;
                action
            }
        }
    }
}

impl Pass<'_> {
    /// Settles every node of the image.
    pub(super) async fn settle(&self, policy: &Policy) -> Outcome {
        let spec = &self.image.spec;
        let (Some(file), Some(volid)) = (spec.file_name(), spec.volume_id()) else {
            return Outcome::Blocked(
                "UnknownFormat",
                "the disk image's format is neither given (spec.format) nor in the URL".into(),
            );
        };
        if let Err(message) = self.check_privileges().await {
            return Outcome::Blocked("MissingPrivilege", message);
        }
        let targets = match self.targets(policy).await {
            Ok(targets) => targets,
            Err((reason, message)) => return Outcome::Blocked(reason, message),
        };
        let mut by_node: BTreeMap<String, ImageNodeStatus> = BTreeMap::new();
        for node in &targets.downloaders {
            let state = match self
                .settle_node(node, (&file, &volid), targets.shared)
                .await
            {
                Ok(state) => state,
                Err(message) => return Outcome::Blocked("NotConnected", message),
            };
            by_node.insert(node.clone(), state);
        }
        let nodes = mirror_shared(&targets, by_node);
        Outcome::Nodes {
            shared: targets.shared,
            nodes,
        }
    }

    /// Whether the credentials hold what downloading (and, with `deletionPolicy: Delete`,
    /// removing) the image needs; otherwise a message naming each privilege and path.
    async fn check_privileges(&self) -> Result<(), String> {
        let pve = &self.conn.pve;
        let release = self
            .conn
            .release
            .get(pve)
            .await
            .map_err(|e| format!("asking Proxmox for its version: {e}"))?;
        let named = [(self.image.name_any(), self.image.spec.clone())];
        let needs = needs_with_images(&[], &named, release, &VmScope::AllVms);
        let missing = missing_needs(self.conn, &needs)
            .await
            .map_err(|e| format!("reading the credentials' privileges: {e}"))?;
        if missing.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
        Err(format!(
            "the Proxmox credentials lack {}; nothing was downloaded. Grant them (`pve-operator \
             privileges -f <this image's manifest>` prints the pveum commands); the controller \
             checks again in 30 s",
            list.join(", ")
        ))
    }

    /// The nodes the image goes to, from the online nodes and their storage lists.
    async fn targets(&self, policy: &Policy) -> Result<Targets, (&'static str, String)> {
        let spec = &self.image.spec;
        let snapshot = self
            .conn
            .inventory
            .fresh_snapshot()
            .await
            .map_err(|e| ("NotConnected", format!("reading /cluster/resources: {e}")))?;
        let online: Vec<String> = snapshot
            .nodes
            .values()
            .filter(|n| n.online)
            .map(|n| n.name.clone())
            .collect();
        let allowed = policy.allowed_nodes();
        let wanted: Vec<&String> = online
            .iter()
            .filter(|n| match &spec.nodes {
                Some(nodes) => nodes.contains(n),
                None => allowed.as_ref().is_none_or(|a| a.contains(*n)),
            })
            .collect();
        let content = targets::content_type(spec.content);
        let mut storage = Vec::new();
        for node in wanted {
            let list = self
                .conn
                .pve
                .storages(node, None, false)
                .await
                .map_err(|e| {
                    (
                        "NotConnected",
                        format!("listing the storages of {node}: {e}"),
                    )
                })?;
            let info = list.iter().find(|s| s.storage == spec.storage);
            storage.push(StorageOnNode {
                node: node.clone(),
                available: info
                    .is_some_and(|s| s.enabled != Some(false) && s.active != Some(false)),
                allows_content: info.is_some_and(|s| s.supports(content)),
                shared: info.is_some_and(|s| s.shared == Some(true)),
            });
        }
        targets::plan(spec, &online, allowed.as_ref(), &storage)
            .map_err(|e| ("StorageUnavailable", e.0))
    }

    /// One downloading node: present, downloading, failed, or a new download started (on a
    /// `shared` storage, one download serves every node).
    async fn settle_node(
        &self,
        node: &str,
        (file, volid): (&str, &str),
        shared: bool,
    ) -> Result<ImageNodeStatus, String> {
        let spec = &self.image.spec;
        let pve = &self.conn.pve;
        let content = targets::content_type(spec.content);
        let listed = pve
            .storage_content(node, &spec.storage, Some(content), None)
            .await
            .map_err(|e| format!("listing {} on {node}: {e}", spec.storage))?;
        let entry = |state, upid: Option<String>, message: Option<String>| ImageNodeStatus {
            node: node.to_string(),
            state,
            upid,
            size: None,
            message,
            retry_annotation: None,
        };
        if let Some(found) = listed.iter().find(|v| v.volid == volid) {
            let mut present = entry(ImageState::Present, None, None);
            present.size = found.size;
            if self
                .before(node)
                .is_some_and(|b| b.state != ImageState::Present)
            {
                self.event(
                    EventType::Normal,
                    "Downloaded",
                    &format!("{volid} is on node {node}"),
                )
                .await;
            }
            return Ok(present);
        }
        let retry = self.image.annotations().get(RETRY_ANNOTATION).cloned();
        match self.before(node) {
            Some(b) if b.state == ImageState::Failed && b.retry_annotation == retry => {
                return Ok(b.clone());
            }
            Some(b) if b.state == ImageState::Downloading => {
                if let Some(upid) = b.upid.as_deref().and_then(|u| u.parse::<Upid>().ok()) {
                    return Ok(self.follow(node, upid, retry).await);
                }
            }
            _ => {}
        }
        // A download this controller sent whose record in status was refused (the image had
        // changed meanwhile) is this node's download all the same.
        let owner = Wake::Image(self.object_ref());
        let sent = self.conn.tasks.tasks_of(&owner);
        if let Some(upid) = sent.into_iter().rev().find(|u| shared || u.node == node) {
            return Ok(self.follow(node, upid, retry).await);
        }
        // A download of this very file may run already: started by a controller that stopped
        // before it could write the UPID to status.
        if let Some(upid) = running_download(pve, node, file).await? {
            return Ok(self.follow(node, upid, retry).await);
        }
        let Some(slot) = self.conn.tasks.reserve(node, &owner) else {
            return Ok(entry(ImageState::Pending, None, None));
        };
        let request = DownloadUrl {
            url: spec.url.clone(),
            filename: file.to_string(),
            content: match spec.content {
                ImageContent::Iso => DownloadContent::Iso,
                ImageContent::Import => DownloadContent::Import,
            },
            checksum: Some(Checksum {
                algorithm: match spec.checksum.algorithm {
                    pve_operator_api::ChecksumAlgorithm::Sha256 => ChecksumAlgorithm::Sha256,
                    pve_operator_api::ChecksumAlgorithm::Sha512 => ChecksumAlgorithm::Sha512,
                },
                hex: spec.checksum.normalised(),
            }),
            verify_certificates: None,
        };
        match pve.download_url(node, &spec.storage, &request).await {
            Ok(upid) => {
                self.conn
                    .tasks
                    .track_with(&upid, Wake::Image(self.object_ref()), Some(slot));
                let note = format!("downloading {} to {volid} on node {node}", spec.url);
                self.event(EventType::Normal, "Downloading", &note).await;
                Ok(entry(ImageState::Downloading, Some(upid.to_string()), None))
            }
            Err(error) => {
                let message = format!("download-url refused: {error}");
                self.event(EventType::Warning, "DownloadFailed", &message)
                    .await;
                let mut failed = entry(ImageState::Failed, None, Some(message));
                failed.retry_annotation = retry;
                Ok(failed)
            }
        }
    }

    /// A download in flight: still running, or how it ended.
    async fn follow(&self, node: &str, upid: Upid, retry: Option<String>) -> ImageNodeStatus {
        self.conn.tasks.track(&upid, Wake::Image(self.object_ref()));
        let mut state = ImageNodeStatus {
            node: node.to_string(),
            state: ImageState::Downloading,
            upid: Some(upid.to_string()),
            size: None,
            message: None,
            retry_annotation: None,
        };
        if let Some(outcome) = self.conn.tasks.take_outcome(&upid) {
            if outcome.succeeded() {
                // Done, yet not listed a moment ago: the next pass lists it.
                state.state = ImageState::Pending;
            } else {
                let mut message = format!("download task failed: {}", outcome.exit);
                if let Some(last) = outcome.log_tail.iter().rev().find(|l| !l.trim().is_empty()) {
                    message.push_str(&format!(" (task log: {})", last.trim()));
                }
                self.event(EventType::Warning, "DownloadFailed", &message)
                    .await;
                state.state = ImageState::Failed;
                state.message = Some(message);
                state.retry_annotation = retry;
            }
        }
        state
    }

    /// The node's entry in the status before this pass.
    fn before(&self, node: &str) -> Option<&ImageNodeStatus> {
        self.previous.nodes.iter().find(|n| n.node == node)
    }

    fn object_ref(&self) -> ObjectRef<ProxmoxImage> {
        ObjectRef::from_obj(self.image)
    }

    async fn event(&self, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: reason.into(),
            secondary: None,
        };
        let reference = self.image.object_ref(&());
        if let Err(error) = self.ctx.recorder.publish(&event, &reference).await {
            tracing::debug!(%error, image = %self.image.name_any(), "could not publish an event");
        }
    }
}

/// The UPID of a `download` task for `file` that runs on `node`, if any.
async fn running_download(pve: &PveClient, node: &str, file: &str) -> Result<Option<Upid>, String> {
    let query = TaskListQuery {
        typefilter: Some("download".into()),
        source: Some(TaskSource::Active),
        ..TaskListQuery::default()
    };
    let tasks = pve
        .tasks(node, &query)
        .await
        .map_err(|e| format!("listing the running tasks of {node}: {e}"))?;
    Ok(tasks
        .into_iter()
        .filter(|t| t.task_type == "download" && t.id == file)
        .find_map(|t| t.upid.parse().ok()))
}

/// Every node of the targets with its state: a shared storage's nodes share the downloader's.
fn mirror_shared(
    targets: &Targets,
    mut by_node: BTreeMap<String, ImageNodeStatus>,
) -> Vec<ImageNodeStatus> {
    let first = targets
        .downloaders
        .first()
        .and_then(|d| by_node.get(d))
        .cloned();
    targets
        .nodes
        .iter()
        .filter_map(|node| {
            by_node.remove(node).or_else(|| {
                first.clone().map(|f| ImageNodeStatus {
                    node: node.clone(),
                    upid: None,
                    ..f
                })
            })
        })
        .collect()
}
