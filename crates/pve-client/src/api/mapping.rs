//! Cluster resource mappings (`GET /cluster/mapping/pci`, `GET /cluster/mapping/usb`): a
//! logical device name that an administrator maps to a host device per node, and that a token
//! with `Mapping.Use` on `/mapping/<kind>/<id>` may pass through without `root@pam`.

use serde::Deserialize;

use crate::client::PveClient;
use crate::error::Result;
use crate::propstring::PropertyString;
use crate::request::{ApiRequest, Method, Params};

/// The kind of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingKind {
    /// PCI devices (`/cluster/mapping/pci`, ACL path `/mapping/pci/<id>`).
    Pci,
    /// USB devices (`/cluster/mapping/usb`, ACL path `/mapping/usb/<id>`).
    Usb,
}

impl MappingKind {
    /// `pci` or `usb`.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingKind::Pci => "pci",
            MappingKind::Usb => "usb",
        }
    }

    /// The ACL path of mapping `id`, on which `Mapping.Use` is checked.
    pub fn acl_path(self, id: &str) -> String {
        format!("/mapping/{}/{id}", self.as_str())
    }
}

/// One mapping as the list returns it (only those the caller may see: `Mapping.Audit`,
/// `Mapping.Use` or `Mapping.Modify` on it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Mapping {
    /// The mapping ID.
    pub id: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// One property string per node device: `node=pve1,path=0000:01:00.0,id=10de:1eb8,...`.
    #[serde(default)]
    pub map: Vec<String>,
    /// Whether the devices can provide mediated devices (PCI mappings; absent means no).
    #[serde(default, deserialize_with = "crate::de::opt_bool")]
    pub mdev: Option<bool>,
}

impl Mapping {
    /// The nodes the mapping has a device on, sorted and without repeats.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .map
            .iter()
            .filter_map(|entry| PropertyString::parse(entry).ok())
            .filter_map(|p| p.get("node").map(str::to_owned))
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Whether the mapping has a device on `node`.
    pub fn has_device_on(&self, node: &str) -> bool {
        self.nodes().iter().any(|n| n == node)
    }
}

/// `GET /cluster/mapping/{pci|usb}`.
pub fn mappings_request(kind: MappingKind) -> ApiRequest {
    let path = match kind {
        MappingKind::Pci => "/cluster/mapping/pci",
        MappingKind::Usb => "/cluster/mapping/usb",
    };
    ApiRequest::new(Method::Get, path, &[], Params::new())
}

impl PveClient {
    /// `GET /cluster/mapping/{pci|usb}`: the mappings of `kind` the caller may see.
    pub async fn mappings(&self, kind: MappingKind) -> Result<Vec<Mapping>> {
        self.call(&mappings_request(kind)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_lists_the_nodes_it_has_a_device_on() {
        let list: Vec<Mapping> = serde_json::from_str(
            r#"[{"id":"gpu_a","description":"A4000","map":["node=pve2,path=0000:01:00.0,id=10de:24b0,iommugroup=14","node=pve1,path=0000:02:00.0,id=10de:24b0","node=pve2,path=0000:03:00.0,id=10de:24b0"]},{"id":"key","map":[]}]"#,
        )
        .unwrap();
        assert_eq!(list[0].nodes(), ["pve1", "pve2"]);
        assert!(list[0].has_device_on("pve1"));
        assert!(!list[0].has_device_on("pve3"));
        assert!(list[1].nodes().is_empty());
        assert_eq!(MappingKind::Usb.acl_path("key"), "/mapping/usb/key");
        assert_eq!(
            mappings_request(MappingKind::Pci).path,
            "/cluster/mapping/pci"
        );
    }
}
