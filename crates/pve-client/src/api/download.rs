//! Downloading an image into a storage: `POST /nodes/{node}/storage/{storage}/download-url`, a
//! task that fetches the URL on the node, checks the checksum and writes the file.
//!
//! Proxmox normalises a file name it does not like (the schema warns "Caution: This will be
//! normalized!"), which would make the file impossible to find again by name; the client refuses
//! such names instead, so the name sent is the name stored.

use crate::api::{validate_node, validate_storage};
use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// What the downloaded file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadContent {
    /// An ISO image (`iso`; a name ending in `.iso` or `.img`), stored as `STORAGE:iso/NAME`.
    Iso,
    /// A disk image to import (`import`, PVE 8.2 and later; a name ending in `.qcow2`, `.raw` or
    /// `.vmdk`), stored as `STORAGE:import/NAME`.
    Import,
}

impl DownloadContent {
    /// The storage content type.
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadContent::Iso => "iso",
            DownloadContent::Import => "import",
        }
    }

    /// The file name endings Proxmox accepts for this content.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            DownloadContent::Iso => &[".iso", ".img"],
            DownloadContent::Import => &[".qcow2", ".raw", ".vmdk"],
        }
    }

    /// The volume ID the file gets on `storage`.
    pub fn volume_id(self, storage: &str, filename: &str) -> String {
        format!("{storage}:{}/{filename}", self.as_str())
    }
}

/// A checksum algorithm Proxmox verifies a download with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// `sha256`.
    Sha256,
    /// `sha512`.
    Sha512,
}

impl ChecksumAlgorithm {
    /// The schema's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha512 => "sha512",
        }
    }

    /// The length of the checksum in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha512 => 128,
        }
    }
}

/// The expected checksum of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The checksum in hex.
    pub hex: String,
}

/// The parameters of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrl {
    /// The URL (`http://` or `https://`).
    pub url: String,
    /// The file name to store it under.
    pub filename: String,
    /// What the file is.
    pub content: DownloadContent,
    /// The checksum Proxmox verifies before keeping the file.
    pub checksum: Option<Checksum>,
    /// `verify-certificates` (Proxmox's default: verify).
    pub verify_certificates: Option<bool>,
}

fn invalid(field: &str, msg: impl Into<String>) -> PveError {
    PveError::invalid_input(field, msg)
}

fn check_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(invalid(
            "url",
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("url", format!("{url:?} names no host")));
    }
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "url",
            "must be at most 2048 characters, without white space or control characters",
        ));
    }
    Ok(())
}

fn check_filename(content: DownloadContent, name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !plain {
        return Err(invalid(
            "filename",
            format!(
                "{name:?} is not a plain file name (letters, digits, '-', '_' and '.', not \
                 starting with '.', at most 255 characters); Proxmox would rename it"
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if !content.extensions().iter().any(|e| lower.ends_with(e)) {
        return Err(invalid(
            "filename",
            format!(
                "{name:?} must end in {} for content {}",
                content.extensions().join(" or "),
                content.as_str()
            ),
        ));
    }
    Ok(())
}

fn check_checksum(c: &Checksum) -> Result<()> {
    let ok = c.hex.len() == c.algorithm.hex_len() && c.hex.chars().all(|h| h.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "checksum",
            format!(
                "a {} checksum is {} hex digits",
                c.algorithm.as_str(),
                c.algorithm.hex_len()
            ),
        ))
    }
}

/// `POST /nodes/{node}/storage/{storage}/download-url`.
pub fn download_url_request(node: &str, storage: &str, d: &DownloadUrl) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_storage("storage", storage)?;
    check_url(&d.url)?;
    check_filename(d.content, &d.filename)?;
    let mut p = Params::new();
    p.str("url", &d.url);
    p.str("filename", &d.filename);
    p.str("content", d.content.as_str());
    if let Some(c) = &d.checksum {
        check_checksum(c)?;
        p.str("checksum", c.hex.to_ascii_lowercase());
        p.str("checksum-algorithm", c.algorithm.as_str());
    }
    if let Some(v) = d.verify_certificates {
        p.bool("verify-certificates", v);
    }
    Ok(ApiRequest::new(
        Method::Post,
        "/nodes/{node}/storage/{storage}/download-url",
        &[("node", node), ("storage", storage)],
        p,
    ))
}

impl PveClient {
    /// `POST /nodes/{node}/storage/{storage}/download-url`: starts a `download` task (needs
    /// `Datastore.AllocateTemplate` on the storage and `Sys.AccessNetwork` on the node).
    pub async fn download_url(&self, node: &str, storage: &str, d: &DownloadUrl) -> Result<Upid> {
        self.call(&download_url_request(node, storage, d)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_image() -> DownloadUrl {
        DownloadUrl {
            url: "https://cloud.debian.org/images/debian-12-genericcloud-amd64.qcow2".into(),
            filename: "debian-12-3f1e.qcow2".into(),
            content: DownloadContent::Import,
            checksum: Some(Checksum {
                algorithm: ChecksumAlgorithm::Sha256,
                hex: "AB".repeat(32),
            }),
            verify_certificates: None,
        }
    }

    #[test]
    fn a_download_sends_url_name_content_and_checksum() {
        let r = download_url_request("pve", "local", &cloud_image()).unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/nodes/pve/storage/local/download-url");
        assert_eq!(
            r.params.form_encode(),
            format!(
                "url=https%3A%2F%2Fcloud.debian.org%2Fimages%2Fdebian-12-genericcloud-amd64.qcow2\
                 &filename=debian-12-3f1e.qcow2&content=import&checksum={}\
                 &checksum-algorithm=sha256",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            DownloadContent::Import.volume_id("local", "debian-12-3f1e.qcow2"),
            "local:import/debian-12-3f1e.qcow2"
        );
    }

    #[test]
    fn names_proxmox_would_rename_urls_it_would_refuse_and_bad_checksums_are_refused() {
        type Spoil = fn(&mut DownloadUrl);
        let cases: [(&str, Spoil); 7] = [
            ("url", |d| d.url = "ftp://x/a.qcow2".into()),
            ("url", |d| d.url = "https://".into()),
            ("url", |d| d.url = "https://x/a b.qcow2".into()),
            ("filename", |d| d.filename = "../etc/a.qcow2".into()),
            ("filename", |d| d.filename = "disk.qcow2&content=iso".into()),
            ("filename", |d| d.filename = "debian.iso".into()),
            ("checksum", |d| {
                d.checksum = Some(Checksum {
                    algorithm: ChecksumAlgorithm::Sha512,
                    hex: "ab".repeat(32),
                })
            }),
        ];
        for (field, spoil) in cases {
            let mut d = cloud_image();
            spoil(&mut d);
            let e = download_url_request("pve", "local", &d).unwrap_err();
            assert!(
                matches!(&e, PveError::InvalidInput { field: f, .. } if f == field),
                "{d:?}: {e}"
            );
        }
        let iso = DownloadUrl {
            filename: "talos-1.9.iso".into(),
            content: DownloadContent::Iso,
            checksum: None,
            ..cloud_image()
        };
        assert!(download_url_request("pve", "local", &iso).is_ok());
    }
}
