//! Reading MachineRequests from YAML files (`-f`), as `kubectl apply -f` would.

use std::path::PathBuf;

use anyhow::Context;
use pve_operator_api::{MachineRequest, MachineRequestSpec};
use serde::Deserialize;

/// Reads every `MachineRequest` document of the given files (other kinds are skipped) and
/// returns their specs. A file that does not parse is an error naming the file and document.
pub fn read_machine_requests(files: &[PathBuf]) -> anyhow::Result<Vec<MachineRequestSpec>> {
    let mut specs = Vec::new();
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
            if value.is_null()
                || value.get("kind").and_then(|k| k.as_str()) != Some("MachineRequest")
            {
                continue;
            }
            let request: MachineRequest = serde_yaml::from_value(value).with_context(|| {
                format!(
                    "{}: document {} is not a valid MachineRequest",
                    file.display(),
                    index + 1
                )
            })?;
            specs.push(request.spec);
        }
    }
    Ok(specs)
}
