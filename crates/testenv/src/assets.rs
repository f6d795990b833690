//! Finding the kube-apiserver and etcd binaries: the standard envtest variables first, then the
//! project's pinned build (hack/envtest/build.sh), which builds once and caches.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::Error;

/// Where the two control-plane binaries are.
#[derive(Debug, Clone)]
pub struct Assets {
    /// Path of the `kube-apiserver` binary.
    pub kube_apiserver: PathBuf,
    /// Path of the `etcd` binary.
    pub etcd: PathBuf,
}

/// The build script, found relative to this crate so that `cargo test` works from any directory.
fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/envtest/build.sh")
}

/// Locates the binaries once per process. Order: `TEST_ASSET_KUBE_APISERVER` + `TEST_ASSET_ETCD`,
/// then `KUBEBUILDER_ASSETS`, then the cached pinned build (built on first use).
pub fn locate() -> Result<Assets, Error> {
    static FOUND: OnceLock<Result<Assets, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate_uncached().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Assets)
}

fn locate_uncached() -> Result<Assets, Error> {
    if let (Some(api), Some(etcd)) = (
        std::env::var_os("TEST_ASSET_KUBE_APISERVER"),
        std::env::var_os("TEST_ASSET_ETCD"),
    ) {
        return checked(PathBuf::from(api), PathBuf::from(etcd), "TEST_ASSET_*");
    }
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS") {
        let dir = PathBuf::from(dir);
        return checked(
            dir.join("kube-apiserver"),
            dir.join("etcd"),
            "KUBEBUILDER_ASSETS",
        );
    }
    let script = build_script();
    // The script prints its progress on stderr (passed through, so a first build is visible) and
    // the asset directory as the last line of stdout.
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Assets(format!("could not run {}: {e}", script.display())))?;
    if !output.status.success() {
        return Err(Error::Assets(format!(
            "{} failed ({}); its message above says what to install, or set KUBEBUILDER_ASSETS to a \
             directory holding kube-apiserver and etcd",
            script.display(),
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim();
    let dir = PathBuf::from(dir);
    checked(
        dir.join("kube-apiserver"),
        dir.join("etcd"),
        "hack/envtest/build.sh",
    )
}

fn checked(kube_apiserver: PathBuf, etcd: PathBuf, source: &str) -> Result<Assets, Error> {
    for bin in [&kube_apiserver, &etcd] {
        if !bin.is_file() {
            return Err(Error::Assets(format!(
                "{} (from {source}) does not exist; point KUBEBUILDER_ASSETS at a directory with \
                 kube-apiserver and etcd, or unset it to use the project's pinned build",
                bin.display()
            )));
        }
    }
    Ok(Assets {
        kube_apiserver,
        etcd,
    })
}
