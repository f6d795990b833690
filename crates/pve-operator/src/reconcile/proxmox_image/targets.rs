//! Where an image goes: the nodes it is downloaded to, from the spec, what the identity and
//! cluster allow, and where the storage is. Pure: the facts are read by the caller.

use std::collections::BTreeSet;

use pve_operator_api::{ImageContent, ProxmoxImageSpec};

/// The storage as one node reports it (`GET /nodes/{node}/storage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOnNode {
    /// The node.
    pub node: String,
    /// Whether the node has the storage, enabled and active.
    pub available: bool,
    /// Whether the storage allows the image's content type.
    pub allows_content: bool,
    /// Whether the storage is shared between nodes.
    pub shared: bool,
}

/// The plan: the nodes meant to have the image and, per node, the one that downloads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Whether one download serves every node (shared storage).
    pub shared: bool,
    /// The nodes that download (one for a shared storage).
    pub downloaders: Vec<String>,
    /// Every node the image is meant for (a shared storage's nodes all see the one file).
    pub nodes: Vec<String>,
}

/// Why there is nowhere to put the image (a message for the Ready condition).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoTarget(pub String);

/// The storage content type of an image.
pub fn content_type(content: ImageContent) -> &'static str {
    match content {
        ImageContent::Iso => "iso",
        ImageContent::Import => "import",
    }
}

/// The targets of `spec` among `online` nodes (name order), limited to `allowed` (from the
/// identity and cluster; `None`: any), given the storage as each online node reports it.
pub fn plan(
    spec: &ProxmoxImageSpec,
    online: &[String],
    allowed: Option<&BTreeSet<String>>,
    storage: &[StorageOnNode],
) -> Result<Targets, NoTarget> {
    let content = content_type(spec.content);
    let on = |node: &str| storage.iter().find(|s| s.node == node);
    let wanted: Vec<String> = match &spec.nodes {
        Some(nodes) => {
            for node in nodes {
                if !online.contains(node) {
                    return Err(NoTarget(format!(
                        "spec.nodes names {node}, which is not an online Proxmox node"
                    )));
                }
                if !on(node).is_some_and(|s| s.available) {
                    return Err(NoTarget(format!(
                        "storage {} is not available on node {node} (spec.nodes); name nodes \
                         that have it, or omit spec.nodes",
                        spec.storage
                    )));
                }
            }
            nodes.clone()
        }
        None => online
            .iter()
            .filter(|n| allowed.is_none_or(|a| a.contains(*n)))
            .filter(|n| on(n).is_some_and(|s| s.available))
            .cloned()
            .collect(),
    };
    if wanted.is_empty() {
        return Err(NoTarget(format!(
            "no online node that the identity and cluster allow has storage {} (or the \
             credentials cannot see it: Datastore.Audit on /storage/{} is needed to list it)",
            spec.storage, spec.storage
        )));
    }
    if let Some(refusing) = wanted
        .iter()
        .find(|n| on(n).is_some_and(|s| !s.allows_content))
    {
        return Err(NoTarget(format!(
            "storage {} does not allow content {content} (on node {refusing}); add {content} to \
             its content types (Datacenter → Storage → {} → Content) or choose another storage",
            spec.storage, spec.storage
        )));
    }
    let shared = wanted.iter().any(|n| on(n).is_some_and(|s| s.shared));
    let downloaders = if shared {
        wanted.iter().take(1).cloned().collect()
    } else {
        wanted.clone()
    };
    Ok(Targets {
        shared,
        downloaders,
        nodes: wanted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pve_operator_api::{ChecksumAlgorithm, ClusterRef, ImageChecksum, ImageDeletionPolicy};

    fn spec(nodes: Option<Vec<&str>>) -> ProxmoxImageSpec {
        ProxmoxImageSpec {
            cluster_ref: Some(ClusterRef { name: "pve".into() }),
            url: "http://127.0.0.1/a.iso".into(),
            checksum: ImageChecksum {
                algorithm: ChecksumAlgorithm::Sha256,
                value: "a".repeat(64),
            },
            content: ImageContent::Iso,
            format: None,
            storage: "local".into(),
            nodes: nodes.map(|n| n.into_iter().map(String::from).collect()),
            deletion_policy: ImageDeletionPolicy::Keep,
        }
    }

    fn on(node: &str, available: bool, allows_content: bool, shared: bool) -> StorageOnNode {
        StorageOnNode {
            node: node.into(),
            available,
            allows_content,
            shared,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_local_storage_is_downloaded_to_every_allowed_node_that_has_it() {
        let online = names(&["pve1", "pve2", "pve3"]);
        let storage = [
            on("pve1", true, true, false),
            on("pve2", false, false, false),
            on("pve3", true, true, false),
        ];
        let t = plan(&spec(None), &online, None, &storage).expect("targets");
        assert_eq!((t.shared, t.downloaders.clone()), (false, t.nodes.clone()));
        assert_eq!(t.nodes, names(&["pve1", "pve3"]));
        let allowed: BTreeSet<String> = ["pve3".to_string()].into();
        let t = plan(&spec(None), &online, Some(&allowed), &storage).expect("targets");
        assert_eq!(t.nodes, names(&["pve3"]));
    }

    #[test]
    fn a_shared_storage_is_downloaded_once_for_all_its_nodes() {
        let online = names(&["pve1", "pve2"]);
        let storage = [on("pve1", true, true, true), on("pve2", true, true, true)];
        let t = plan(&spec(None), &online, None, &storage).expect("targets");
        assert!(t.shared);
        assert_eq!(t.downloaders, names(&["pve1"]));
        assert_eq!(t.nodes, names(&["pve1", "pve2"]));
    }

    #[test]
    fn named_nodes_must_be_online_and_have_the_storage_and_the_content_must_be_allowed() {
        let online = names(&["pve1", "pve2"]);
        let storage = [
            on("pve1", true, true, false),
            on("pve2", false, true, false),
        ];
        let err = plan(&spec(Some(vec!["pve9"])), &online, None, &storage).expect_err("no target");
        assert!(err.0.contains("pve9, which is not an online"), "{err}");
        let err = plan(&spec(Some(vec!["pve2"])), &online, None, &storage).expect_err("no target");
        assert!(err.0.contains("not available on node pve2"), "{err}");
        let no_iso = [on("pve1", true, false, false)];
        let err = plan(&spec(None), &online, None, &no_iso).expect_err("no target");
        assert!(err.0.contains("does not allow content iso"), "{err}");
        let err = plan(&spec(None), &online, None, &[]).expect_err("no target");
        assert!(err.0.contains("no online node"), "{err}");
    }
}
