//! Reading MachineRequests and ProxmoxImages from YAML files (`-f`), as `kubectl apply -f`
//! would.

use std::path::PathBuf;

use anyhow::Context;
use pve_operator_api::{MachineRequest, MachineRequestSpec, ProxmoxImage, ProxmoxImageSpec};
use serde::Deserialize;

/// What the manifests hold that privileges depend on.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// The MachineRequests' specs.
    pub requests: Vec<MachineRequestSpec>,
    /// The ProxmoxImages, by name.
    pub images: Vec<(String, ProxmoxImageSpec)>,
}

/// Reads every `MachineRequest` and `ProxmoxImage` document of the given files (other kinds
/// are skipped). A file that does not parse is an error naming the file and document.
pub fn read_manifests(files: &[PathBuf]) -> anyhow::Result<Manifests> {
    let mut manifests = Manifests::default();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = serde_yaml::Value::deserialize(document).with_context(|| {
                format!(
                    "{}: document {} is not valid YAML",
                    file.display(),
                    index + 1
                )
            })?;
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            let invalid = || {
                format!(
                    "{}: document {} is not a valid {kind}",
                    file.display(),
                    index + 1
                )
            };
            match kind.as_str() {
                "MachineRequest" => {
                    let request: MachineRequest =
                        serde_yaml::from_value(value).with_context(invalid)?;
                    manifests.requests.push(request.spec);
                }
                "ProxmoxImage" => {
                    let image: ProxmoxImage =
                        serde_yaml::from_value(value).with_context(invalid)?;
                    let name = image.metadata.name.clone().unwrap_or_default();
                    manifests.images.push((name, image.spec));
                }
                _ => {}
            }
        }
    }
    Ok(manifests)
}

/// The specs of every `MachineRequest` document of the given files (see [`read_manifests`]).
pub fn read_machine_requests(files: &[PathBuf]) -> anyhow::Result<Vec<MachineRequestSpec>> {
    Ok(read_manifests(files)?.requests)
}
