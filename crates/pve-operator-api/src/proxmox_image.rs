//! `ProxmoxImage`: an image that Proxmox downloads from a URL into a storage (`download-url`),
//! for MachineRequests in the same namespace to boot (an ISO) or import as a disk (a cloud image).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::machine_request::ClusterRef;
use crate::patterns;

/// An image from a URL, downloaded by Proxmox into one storage on the nodes that need it (once
/// for a shared storage), verified by its checksum, and named after that checksum so it is
/// found again and reused. MachineRequests in the same namespace use it by name:
/// `spec.boot.image` for an ISO, `spec.disks[].image` for a disk image to import.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pve-operator.dev",
    version = "v1alpha1",
    kind = "ProxmoxImage",
    namespaced,
    shortname = "pvimg",
    category = "pve",
    status = "ProxmoxImageStatus",
    printcolumn = r#"{"name":"Content","type":"string","jsonPath":".spec.content"}"#,
    printcolumn = r#"{"name":"Storage","type":"string","jsonPath":".spec.storage"}"#,
    printcolumn = r#"{"name":"Volume","type":"string","jsonPath":".status.volume","priority":1}"#,
    printcolumn = r#"{"name":"Nodes","type":"string","jsonPath":".status.summary"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "An image Proxmox downloads from a URL, for MachineRequests to boot or import. See `kubectl explain proxmoximage.spec`."
)]
#[x_kube(validation = Rule::new("self.content == 'iso' ? !has(self.format) : has(self.format) || self.url.matches('(?i)[.](qcow2|raw|vmdk)([?#].*)?$')").message("format applies to import images only, and an import image whose URL does not end in .qcow2, .raw or .vmdk needs format"))]
#[x_kube(validation = Rule::new("has(self.clusterRef) == has(oldSelf.clusterRef) && (!has(self.clusterRef) || self.clusterRef == oldSelf.clusterRef)").message("clusterRef is immutable: the image's files live in that cluster"))]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxImageSpec {
    /// The ProxmoxCluster (in this namespace) whose Proxmox stores the image; omitted: the
    /// controller's default connection, as for MachineRequests. Requests use the image only on
    /// the same cluster. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ref: Option<ClusterRef>,
    /// Where Proxmox downloads the image from: an `http://` or `https://` URL without
    /// credentials. The URL must start with one of the prefixes the ProxmoxIdentity allows
    /// (`spec.allowed.imageUrls`). Immutable (a new URL is a new image).
    #[schemars(length(min = 8, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/@?#\\\\s]+/[^\\\\s]*$')").message("url must be an http:// or https:// URL with a host, a path and no credentials (user@host) or spaces"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("url is immutable: create another ProxmoxImage for another file"))]
    pub url: String,
    /// The file's checksum, which Proxmox verifies after the download. It also names the file
    /// in the storage. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("checksum is immutable: create another ProxmoxImage for another file"))]
    pub checksum: ImageChecksum,
    /// `iso`: a CD/DVD image to boot (`spec.boot.image`). `import`: a disk image (qcow2, raw or
    /// vmdk, Proxmox VE 8.2 and later) to import as a disk (`spec.disks[].image`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("content is immutable"))]
    pub content: ImageContent,
    /// The disk image's format, for `import` content: `qcow2`, `raw` or `vmdk`. Omitted: taken
    /// from the URL's file name ending. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("format is immutable"))]
    pub format: Option<ImageFormat>,
    /// The Proxmox storage to download into; it must allow the content type (`iso` or
    /// `import`). A shared storage gets one download for the whole cluster. Immutable.
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage is immutable: create another ProxmoxImage for another storage"))]
    pub storage: String,
    /// The nodes to download to (for a node-local storage). Omitted: every online node that
    /// has the storage and that the identity and cluster allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 256),
        inner(length(min = 1, max = 63), pattern(patterns::NODE_NAME))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub nodes: Option<Vec<String>>,
    /// What happens to the downloaded files when this ProxmoxImage is deleted: `Keep` (the
    /// default) leaves them in the storage; `Delete` removes them once no MachineRequest uses
    /// the image and no other ProxmoxImage names the same file (the deletion waits until then).
    #[serde(default)]
    pub deletion_policy: ImageDeletionPolicy,
}

/// A checksum and its algorithm.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.algorithm == 'sha256' ? size(self.value) == 64 : size(self.value) == 128").message("checksum.value must be the hex digest of its algorithm: 64 hex digits for sha256, 128 for sha512"))]
pub struct ImageChecksum {
    /// `sha256` or `sha512`.
    pub algorithm: ChecksumAlgorithm,
    /// The hex digest, lower or upper case (as `sha256sum`/`sha512sum` print it).
    #[schemars(length(min = 64, max = 128), pattern(r"^[0-9a-fA-F]+$"))]
    pub value: String,
}

/// A checksum algorithm that Proxmox verifies downloads with.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// What an image is for.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImageContent {
    /// A CD/DVD image (`STORAGE:iso/FILE`).
    Iso,
    /// A disk image to import (`STORAGE:import/FILE`).
    Import,
}

/// A disk image format Proxmox imports.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// QEMU copy-on-write v2.
    Qcow2,
    /// A raw disk image.
    Raw,
    /// VMware's format.
    Vmdk,
}

/// What happens to an image's files when the ProxmoxImage is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ImageDeletionPolicy {
    /// Leave the files in the storage.
    #[default]
    Keep,
    /// Remove the files once nothing uses them.
    Delete,
}

/// Observed state of a ProxmoxImage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProxmoxImageStatus {
    /// The volume the image is stored as on each node, e.g.
    /// `local:import/pveop-sha256-….qcow2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// The image on each node it is meant for (one entry, `node` the downloading node, for a
    /// shared storage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub nodes: Vec<ImageNodeStatus>,
    /// How many of the nodes have the image, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Whether the storage is shared (one download serves every node).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The generation of the spec that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (present on every node it is meant for), Downloaded (present on at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The image on one node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageNodeStatus {
    /// The node.
    pub node: String,
    /// Where the image is on that node.
    pub state: ImageState,
    /// The download task, while it runs or when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upid: Option<String>,
    /// The file's size in bytes, once present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why the image is not there (Proxmox's own message for a failed download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For a failed download: the value of the `pve-operator.dev/retry` annotation when it
    /// failed. The download is tried again once the annotation takes another value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_annotation: Option<String>,
}

/// Where an image is on one node.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageState {
    /// Not downloaded yet.
    Pending,
    /// Proxmox is downloading it.
    Downloading,
    /// In the storage and verified.
    Present,
    /// The download failed; it is tried again when the spec or the retry annotation changes.
    Failed,
}

impl ImageChecksum {
    /// The digest in lower case, as Proxmox compares and as the file is named.
    pub fn normalised(&self) -> String {
        self.value.to_ascii_lowercase()
    }
}

impl ProxmoxImageSpec {
    /// The image's format: `iso` for ISO content, else the spec's or the URL's ending.
    pub fn format_name(&self) -> Option<&'static str> {
        match (self.content, self.format) {
            (ImageContent::Iso, _) => Some("iso"),
            (ImageContent::Import, Some(ImageFormat::Qcow2)) => Some("qcow2"),
            (ImageContent::Import, Some(ImageFormat::Raw)) => Some("raw"),
            (ImageContent::Import, Some(ImageFormat::Vmdk)) => Some("vmdk"),
            (ImageContent::Import, None) => {
                let path = self.url.split(['?', '#']).next().unwrap_or_default();
                ["qcow2", "raw", "vmdk"]
                    .into_iter()
                    .find(|ext| path.to_ascii_lowercase().ends_with(&format!(".{ext}")))
            }
        }
    }

    /// The file name in the storage, from the checksum alone: `pveop-<algorithm>-<digest>.<ext>`
    /// (the first 64 hex digits of a sha512), so that the same file is found again after a
    /// crash and shared by every ProxmoxImage that names it. `None` when the format is unknown.
    pub fn file_name(&self) -> Option<String> {
        let ext = self.format_name()?;
        let digest = self.checksum.normalised();
        let algorithm = match self.checksum.algorithm {
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha512 => "sha512",
        };
        Some(format!(
            "pveop-{algorithm}-{}.{ext}",
            &digest[..digest.len().min(64)]
        ))
    }

    /// The volume ID of the file: `<storage>:<content>/<file name>`.
    pub fn volume_id(&self) -> Option<String> {
        let content = match self.content {
            ImageContent::Iso => "iso",
            ImageContent::Import => "import",
        };
        Some(format!("{}:{content}/{}", self.storage, self.file_name()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, content: ImageContent, algorithm: ChecksumAlgorithm) -> ProxmoxImageSpec {
        let len = match algorithm {
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha512 => 128,
        };
        ProxmoxImageSpec {
            cluster_ref: Some(ClusterRef { name: "pve".into() }),
            url: url.into(),
            checksum: ImageChecksum {
                algorithm,
                value: "AB".repeat(len / 2),
            },
            content,
            format: None,
            storage: "local".into(),
            nodes: None,
            deletion_policy: ImageDeletionPolicy::Keep,
        }
    }

    #[test]
    fn the_file_is_named_by_its_checksum_and_format() {
        let iso = spec(
            "http://x/a/debian.iso",
            ImageContent::Iso,
            ChecksumAlgorithm::Sha256,
        );
        assert_eq!(
            iso.volume_id().as_deref(),
            Some(format!("local:iso/pveop-sha256-{}.iso", "ab".repeat(32)).as_str())
        );
        let disk = spec(
            "https://x/cloud.QCOW2?sig=1",
            ImageContent::Import,
            ChecksumAlgorithm::Sha512,
        );
        let name = disk.file_name().expect("qcow2 from the URL");
        assert_eq!(name, format!("pveop-sha512-{}.qcow2", "ab".repeat(32)));
    }

    #[test]
    fn a_disk_image_of_unknown_format_has_no_file_name_until_format_is_set() {
        let mut disk = spec(
            "https://x/cloud.img",
            ImageContent::Import,
            ChecksumAlgorithm::Sha256,
        );
        assert_eq!(disk.file_name(), None);
        disk.format = Some(ImageFormat::Raw);
        assert!(disk.file_name().is_some_and(|n| n.ends_with(".raw")));
    }
}
