//! The custom resource types of pve-operator and nothing else, so that other operators can depend
//! on them cheaply: [`MachineRequest`] (a Proxmox VE virtual machine, as it should be),
//! [`ProxmoxCluster`] (a Proxmox VE cluster as one namespace uses it) and [`ProxmoxIdentity`]
//! (cluster-scoped: credentials for one endpoint, and which namespaces may use them for what)
//! and [`ProxmoxImage`] (an image Proxmox downloads from a URL, for requests to boot or import).
//!
//! API group `pve-operator.dev`, version `v1alpha1`. Validation that the schema can express (ranges,
//! formats, exactly one boot source, immutable fields, disks that only grow) is part of the CRDs
//! and enforced by the Kubernetes API server at admission.

pub mod allowances;
pub mod conditions;
pub mod machine_request;
pub mod patterns;
pub mod proxmox_cluster;
pub mod proxmox_identity;
pub mod proxmox_image;
pub mod reserved;

pub use allowances::*;
pub use conditions::HasConditions;
pub use machine_request::*;
pub use proxmox_cluster::*;
pub use proxmox_identity::*;
pub use proxmox_image::*;

/// The API group of every resource here.
pub const GROUP: &str = "pve-operator.dev";
/// The API version of every resource here.
pub const VERSION: &str = "v1alpha1";

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of pve-operator, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        MachineRequest::crd(),
        ProxmoxCluster::crd(),
        ProxmoxIdentity::crd(),
        ProxmoxImage::crd(),
    ]
}

/// One CRD as the YAML document committed under `crds/` and printed by `pve-operator crd`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd)
}

/// The file name of a CRD under `crds/`: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `crds/` must be exactly what the types generate. Regenerate with
    /// `cargo run -p pve-operator -- crd --output-dir crds`.
    #[test]
    fn committed_crds_match_the_rust_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
        for crd in crds() {
            let path = dir.join(crd_file_name(&crd));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            let generated = crd_yaml(&crd).expect("CRD serialises");
            assert!(
                committed == generated,
                "{} is out of date with the Rust types in crates/pve-operator-api; regenerate it \
                 with `cargo run -p pve-operator -- crd --output-dir crds`",
                path.display()
            );
        }
    }

    #[test]
    fn crds_are_structural_with_descriptions_on_spec_fields() {
        let crd = MachineRequest::crd();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
        let properties = spec["properties"].as_object().expect("spec has properties");
        assert!(properties.len() >= 15, "spec has its fields");
        for (name, field) in properties {
            assert!(
                field["description"].as_str().is_some_and(|d| !d.is_empty()),
                "spec.{name} has a description for kubectl explain"
            );
        }
    }
}
