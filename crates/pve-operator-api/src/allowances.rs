//! `Allowances`: what MachineRequests may use in Proxmox through a `ProxmoxIdentity`, and how a
//! `ProxmoxCluster` narrows that for its own requests.
//!
//! Every list is an allow-list: omitted, it does not restrict; given, only what it names may be
//! used (an empty list allows nothing). A ProxmoxCluster's allowances apply on top of its
//! identity's: a request must satisfy both, and a ProxmoxCluster that names something its
//! identity does not allow is refused rather than silently narrowed.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;
use crate::proxmox_cluster::VmidRange;

/// What MachineRequests may use. Omitted lists do not restrict; an empty list allows nothing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Allowances {
    /// The templates that may be cloned (`spec.boot.template`), by VMID or by name. A template
    /// is allowed when its VMID or its name is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub templates: Option<Vec<TemplateSelector>>,
    /// The storages that may hold disks, cloud-init and EFI drives, clones and ISO images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub storages: Option<Vec<String>>,
    /// The bridges (and VLANs on them) that NICs may attach to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub bridges: Option<Vec<BridgeAllowance>>,
    /// The resource pools VMs may join (`spec.pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 1, max = 64), pattern(patterns::POOL_ID))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub pools: Option<Vec<String>>,
    /// The nodes VMs may be placed on (a clone is made on its template's node, which must be
    /// one of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 1, max = 63), pattern(patterns::NODE_NAME))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub nodes: Option<Vec<String>>,
    /// The PCI resource mappings that `spec.pciDevices` may name (Datacenter → Resource
    /// Mappings in Proxmox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 2, max = 128), pattern(patterns::MAPPING_ID))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub pci_mappings: Option<Vec<String>>,
    /// The USB resource mappings that `spec.usbDevices` may name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 2, max = 128), pattern(patterns::MAPPING_ID))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub usb_mappings: Option<Vec<String>>,
    /// The VMIDs the controller may allocate for, and touch on behalf of, these requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid_range: Option<VmidRange>,
}

/// A template, by VMID or by name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.vmid) != has(self.name)").message("name a template by exactly one of vmid or name"))]
pub struct TemplateSelector {
    /// The template's VMID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 999999999))]
    pub vmid: Option<u32>,
    /// The template's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(patterns::DNS_NAME))]
    pub name: Option<String>,
}

/// A bridge NICs may attach to, and the VLAN tags they may use on it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BridgeAllowance {
    /// The bridge (or SDN VNet), e.g. `vmbr0`.
    #[schemars(length(min = 1, max = 15), pattern(patterns::BRIDGE))]
    pub name: String,
    /// The VLAN tags allowed on this bridge. Omitted: any tag, and untagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub vlans: Option<Vec<VlanRange>>,
    /// Whether a NIC without a VLAN tag may attach. Default: true when `vlans` is omitted,
    /// false when it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<bool>,
}

impl BridgeAllowance {
    /// Whether a NIC with this VLAN tag (`None`: untagged) may attach to the bridge.
    pub fn allows_vlan(&self, vlan: Option<u16>) -> bool {
        match (vlan, &self.vlans) {
            (None, vlans) => self.untagged.unwrap_or(vlans.is_none()),
            (Some(_), None) => true,
            (Some(tag), Some(ranges)) => ranges.iter().any(|r| r.contains(tag)),
        }
    }
}

/// A range of VLAN tags, both ends included.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("vlans[].min must not exceed vlans[].max"))]
pub struct VlanRange {
    /// The lowest tag.
    #[schemars(range(min = 1, max = 4094))]
    pub min: u16,
    /// The highest tag.
    #[schemars(range(min = 1, max = 4094))]
    pub max: u16,
}

impl VlanRange {
    /// Whether `tag` is in the range.
    pub fn contains(&self, tag: u16) -> bool {
        (self.min..=self.max).contains(&tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(vlans: Option<Vec<(u16, u16)>>, untagged: Option<bool>) -> BridgeAllowance {
        BridgeAllowance {
            name: "vmbr0".into(),
            vlans: vlans.map(|v| {
                v.into_iter()
                    .map(|(min, max)| VlanRange { min, max })
                    .collect()
            }),
            untagged,
        }
    }

    #[test]
    fn a_bridge_without_vlans_allows_every_tag_and_untagged_unless_told_otherwise() {
        let open = bridge(None, None);
        assert!(open.allows_vlan(None) && open.allows_vlan(Some(4094)));
        let tagged_only = bridge(None, Some(false));
        assert!(!tagged_only.allows_vlan(None) && tagged_only.allows_vlan(Some(7)));
    }

    #[test]
    fn a_bridge_with_vlans_allows_only_those_and_untagged_only_when_told() {
        let ranged = bridge(Some(vec![(100, 199), (300, 300)]), None);
        assert!(ranged.allows_vlan(Some(100)) && ranged.allows_vlan(Some(199)));
        assert!(ranged.allows_vlan(Some(300)));
        assert!(!ranged.allows_vlan(Some(99)) && !ranged.allows_vlan(Some(200)));
        assert!(!ranged.allows_vlan(None), "untagged needs untagged: true");
        assert!(bridge(Some(vec![(5, 5)]), Some(true)).allows_vlan(None));
    }
}
