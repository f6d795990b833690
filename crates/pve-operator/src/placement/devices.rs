//! Passthrough devices and placement: a VM with `spec.pciDevices` or `spec.usbDevices` can run
//! only on a node where every mapping it names has a device. The mappings come from
//! `/cluster/mapping/{pci,usb}` (read through the connection's cached node facts, so a burst
//! of requests costs one read per kind), which lists only the mappings the token may see.

use std::collections::BTreeSet;

use pve_client::PveError;
use pve_client::api::mapping::{Mapping, MappingKind};
use pve_operator_api::MachineRequestSpec;

use crate::proxmox::node_facts::NodeFacts;

/// Why no node can hold the request's devices. Nothing is created for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The mapping is not in Proxmox's list: it does not exist, or the token may not see it.
    #[error(
        "{field} {id:?}: Proxmox lists no {kind} resource mapping of that name to the controller's token; create it under Datacenter → Resource Mappings, or grant the token Mapping.Audit and Mapping.Use on {path} (Mapping.Audit or Mapping.Use may be missing)",
        kind = kind_word(*.kind),
        path = .kind.acl_path(.id)
    )]
    MappingNotVisible {
        /// The request's field, e.g. `spec.pciDevices[0].mapping`.
        field: String,
        /// PCI or USB.
        kind: MappingKind,
        /// The mapping ID.
        id: String,
    },
    /// A mediated device type is asked of a PCI mapping that Proxmox does not mark as able to
    /// provide mediated devices: the VM would not start.
    #[error(
        "{field} asks for the mediated device type {mdev:?} of PCI mapping {id:?}, which is not marked for mediated devices; the Proxmox administrator enables \"Use with mediated devices\" (mdev) on the mapping under Datacenter → Resource Mappings, or remove {field} to pass the whole device through"
    )]
    NotMediated {
        /// The request's field, e.g. `spec.pciDevices[0].mdev`.
        field: String,
        /// The mapping ID.
        id: String,
        /// The mediated device type asked for.
        mdev: String,
    },
    /// No node the request may use has every device.
    #[error("no node can hold the request's passthrough devices: {0}")]
    NoNode(String),
}

impl DeviceError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            DeviceError::MappingNotVisible { .. } => "MappingNotFound",
            DeviceError::NotMediated { .. } => "MappingWithoutMdev",
            DeviceError::NoNode(_) => "NoNodeWithDevice",
        }
    }
}

fn kind_word(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::Pci => "PCI",
        MappingKind::Usb => "USB",
    }
}

/// One device the spec asks for: its field, kind and mapping ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// `spec.pciDevices[i].mapping` or `spec.usbDevices[i].mapping`.
    pub field: String,
    /// PCI or USB.
    pub kind: MappingKind,
    /// The mapping ID.
    pub id: String,
    /// The mediated device type asked for (PCI only), with its field.
    pub mdev: Option<(String, String)>,
}

/// The devices `spec` passes through, in spec order.
pub fn device_requests(spec: &MachineRequestSpec) -> Vec<DeviceRequest> {
    let pci = spec
        .pci_devices
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceRequest {
            field: format!("spec.pciDevices[{i}].mapping"),
            kind: MappingKind::Pci,
            id: d.mapping.clone(),
            mdev: d
                .mdev
                .clone()
                .map(|t| (format!("spec.pciDevices[{i}].mdev"), t)),
        });
    let usb = spec
        .usb_devices
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceRequest {
            field: format!("spec.usbDevices[{i}].mapping"),
            kind: MappingKind::Usb,
            id: d.mapping.clone(),
            mdev: None,
        });
    pci.chain(usb).collect()
}

/// The devices of a request with the mapping Proxmox listed for each (`None`: not listed).
pub type Resolved = Vec<(DeviceRequest, Option<Mapping>)>;

/// Looks up every device's mapping through `facts`.
pub async fn resolve(spec: &MachineRequestSpec, facts: &NodeFacts) -> Result<Resolved, PveError> {
    let mut out = Vec::new();
    for request in device_requests(spec) {
        let mapping = facts.mapping(request.kind, &request.id).await?;
        out.push((request, mapping));
    }
    Ok(out)
}

/// The nodes where every device has a mapped device (`None`: the request has no devices, so
/// any node), or the first mapping Proxmox does not list or that cannot provide the mediated
/// device asked of it.
pub fn nodes_with_devices(resolved: &Resolved) -> Result<Option<BTreeSet<String>>, DeviceError> {
    let mut nodes: Option<BTreeSet<String>> = None;
    for (request, mapping) in resolved {
        let Some(mapping) = mapping else {
            return Err(DeviceError::MappingNotVisible {
                field: request.field.clone(),
                kind: request.kind,
                id: request.id.clone(),
            });
        };
        if let Some((field, mdev)) = &request.mdev
            && mapping.mdev != Some(true)
        {
            return Err(DeviceError::NotMediated {
                field: field.clone(),
                id: request.id.clone(),
                mdev: mdev.clone(),
            });
        }
        let these: BTreeSet<String> = mapping.nodes().into_iter().collect();
        nodes = Some(match nodes {
            None => these,
            Some(n) => n.intersection(&these).cloned().collect(),
        });
    }
    Ok(nodes)
}

/// Why `node` (or, `None`, every node placement may choose) cannot hold the devices: each
/// device's mapping and the nodes it has a device on.
pub fn explain(resolved: &Resolved, node: Option<&str>) -> DeviceError {
    let per_device: Vec<String> = resolved
        .iter()
        .map(|(request, mapping)| {
            let nodes = mapping.as_ref().map(Mapping::nodes).unwrap_or_default();
            let on = if nodes.is_empty() {
                "no node".to_string()
            } else {
                format!("node {}", nodes.join(", "))
            };
            format!("{} {:?} has a device on {on}", request.field, request.id)
        })
        .collect();
    let whom = match node {
        Some(node) => format!("node {node} (where the VM must be made) lacks one; "),
        None => "no online node that the request may use has all of them; ".to_string(),
    };
    DeviceError::NoNode(format!(
        "{whom}{} (ask the Proxmox administrator to map the device on a node the request may use)",
        per_device.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(id: &str, nodes: &[&str]) -> Mapping {
        Mapping {
            id: id.into(),
            description: None,
            map: nodes
                .iter()
                .map(|n| format!("node={n},path=0000:01:00.0,id=10de:24b0"))
                .collect(),
            mdev: None,
        }
    }

    fn spec() -> MachineRequestSpec {
        serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": 512 }, "boot": { "network": {} },
            "pciDevices": [{ "mapping": "gpu" }], "usbDevices": [{ "mapping": "key" }],
        }))
        .expect("spec")
    }

    #[test]
    fn only_the_nodes_where_every_mapping_has_a_device_remain() {
        let requests = device_requests(&spec());
        assert_eq!(requests[1].field, "spec.usbDevices[0].mapping");
        let resolved: Resolved = vec![
            (requests[0].clone(), Some(mapping("gpu", &["pve1", "pve2"]))),
            (requests[1].clone(), Some(mapping("key", &["pve2", "pve3"]))),
        ];
        let nodes = nodes_with_devices(&resolved).expect("listed");
        assert_eq!(nodes, Some(BTreeSet::from(["pve2".to_string()])));
        let why = explain(&resolved, None).to_string();
        assert!(
            why.contains("spec.pciDevices[0].mapping \"gpu\" has a device on node pve1, pve2"),
            "{why}"
        );
        assert_eq!(
            nodes_with_devices(&Vec::new()),
            Ok(None),
            "no devices: any node"
        );
    }

    #[test]
    fn a_mapping_proxmox_does_not_list_is_named_with_the_privileges_that_may_be_missing() {
        let requests = device_requests(&spec());
        let resolved: Resolved = vec![(requests[0].clone(), None)];
        let e = nodes_with_devices(&resolved).expect_err("not listed");
        assert_eq!(e.reason(), "MappingNotFound");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "spec.pciDevices[0].mapping \"gpu\": Proxmox lists no PCI resource mapping"
            ),
            "{text}"
        );
        assert!(
            text.contains("Mapping.Audit or Mapping.Use may be missing"),
            "{text}"
        );
        assert!(text.contains("/mapping/pci/gpu"), "{text}");
    }

    #[test]
    fn a_mediated_device_is_asked_only_of_a_mapping_marked_for_them() {
        let spec: MachineRequestSpec = serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": 512 }, "boot": { "network": {} },
            "pciDevices": [{ "mapping": "gpu", "mdev": "nvidia-35" }],
        }))
        .expect("spec");
        let requests = device_requests(&spec);
        let plain = mapping("gpu", &["pve1"]);
        let e = nodes_with_devices(&vec![(requests[0].clone(), Some(plain.clone()))])
            .expect_err("not marked");
        assert_eq!(e.reason(), "MappingWithoutMdev");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "spec.pciDevices[0].mdev asks for the mediated device type \"nvidia-35\" of PCI mapping \"gpu\""
            ),
            "{text}"
        );
        let marked = Mapping {
            mdev: Some(true),
            ..plain
        };
        assert_eq!(
            nodes_with_devices(&vec![(requests[0].clone(), Some(marked))]),
            Ok(Some(BTreeSet::from(["pve1".to_string()])))
        );
    }
}
