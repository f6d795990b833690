//! The example manifests of `deploy/examples/`: every file's MachineRequests and ProxmoxImages
//! (a file may hold several documents, e.g. an image and the request that boots it).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use pve_operator_api::{MachineRequest, ProxmoxImage};
use serde::Deserialize;

/// The objects of the example files.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// The MachineRequests, in file order.
    pub requests: Vec<MachineRequest>,
    /// The ProxmoxImages, in file order.
    pub images: Vec<ProxmoxImage>,
}

/// The `*.yaml`/`*.yml` files of `dir`, sorted by name.
pub fn example_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the examples directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads one example file: every document must be a MachineRequest or a ProxmoxImage.
pub fn read_example(file: &Path) -> anyhow::Result<Examples> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut examples = Examples::default();
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(document)
            .with_context(|| format!("{}: document {} is not YAML", file.display(), index + 1))?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let what = || {
            format!(
                "{}: document {} is not a valid {kind}",
                file.display(),
                index + 1
            )
        };
        match kind.as_str() {
            "MachineRequest" => examples
                .requests
                .push(serde_yaml::from_value(value).with_context(what)?),
            "ProxmoxImage" => examples
                .images
                .push(serde_yaml::from_value(value).with_context(what)?),
            other => bail!(
                "{}: document {} is a {other:?}; examples hold MachineRequests and ProxmoxImages",
                file.display(),
                index + 1
            ),
        }
    }
    Ok(examples)
}

/// Reads every example file of `dir`; at least one MachineRequest must be there.
pub fn read_examples(dir: &Path) -> anyhow::Result<Examples> {
    let mut all = Examples::default();
    for file in example_files(dir)? {
        let one = read_example(&file)?;
        all.requests.extend(one.requests);
        all.images.extend(one.images);
    }
    if all.requests.is_empty() {
        bail!("no MachineRequest manifests (*.yaml) in {}", dir.display());
    }
    Ok(all)
}
