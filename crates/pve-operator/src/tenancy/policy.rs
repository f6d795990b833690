//! The allow-lists that apply to one MachineRequest: its identity's, then its ProxmoxCluster's.
//! A request must satisfy every layer; each refusal names the request's field, the object whose
//! rule refuses it and the rule (never another tenant's object: the layers are the request's own
//! cluster and the identity it refers to).

use std::collections::BTreeSet;
use std::fmt;

use pve_operator_api::{
    Allowances, BridgeAllowance, MachineRequestSpec, TemplateSelector, VmidRange,
};

/// Who set a layer of allowances, for messages: `ProxmoxIdentity "x"`, `ProxmoxCluster "y"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(pub String);

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One refused value: `spec.disks[1].storage "ceph" is not allowed by ProxmoxCluster "pve"
/// (spec.allowed.storages: local-lvm)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The request's field, e.g. `spec.disks[1].storage`.
    pub field: String,
    /// The refused value as the user wrote it.
    pub value: String,
    /// The object whose rule refuses it.
    pub source: Source,
    /// The rule, e.g. `spec.allowed.storages`.
    pub rule: &'static str,
    /// What the rule allows, for the message.
    pub allowed: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is not allowed by {} ({}: {})",
            self.field, self.value, self.source, self.rule, self.allowed
        )
    }
}

/// Every refusal of one check, shown together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusals(pub Vec<Refusal>);

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&texts.join("; "))
    }
}

impl Refusals {
    fn into_result(self) -> Result<(), Refusals> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// One layer: a source and its allowances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Who set it.
    pub source: Source,
    /// What it allows.
    pub allowances: Allowances,
}

/// Every layer of allowances that applies to a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    layers: Vec<Layer>,
}

fn listing(items: &[String]) -> String {
    if items.is_empty() {
        "none: the list is empty".to_string()
    } else {
        items.join(", ")
    }
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

fn describe_templates(list: &[TemplateSelector]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|t| match (&t.vmid, &t.name) {
            (Some(vmid), _) => format!("VMID {vmid}"),
            (None, Some(name)) => quoted(name),
            (None, None) => "(nothing)".into(),
        })
        .collect();
    listing(&items)
}

fn describe_bridges(list: &[BridgeAllowance]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|b| {
            let mut parts = Vec::new();
            if b.allows_vlan(None) {
                parts.push("untagged".to_string());
            }
            match &b.vlans {
                None => parts.push("any VLAN".into()),
                Some(ranges) => parts.extend(ranges.iter().map(|r| {
                    if r.min == r.max {
                        format!("VLAN {}", r.min)
                    } else {
                        format!("VLAN {}-{}", r.min, r.max)
                    }
                })),
            }
            format!("{} ({})", b.name, parts.join(", "))
        })
        .collect();
    listing(&items)
}

impl Policy {
    /// A policy that allows anything the credentials can reach (the controller's default
    /// connection, configured by the admin alone).
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// Adds a layer (the identity first, then the cluster: the first layer is taken to be the
    /// identity's, whose omitted `imageUrls` allows no download).
    pub fn with_layer(mut self, source: Source, allowances: Allowances) -> Self {
        self.layers.push(Layer { source, allowances });
        self
    }

    /// The layers, outermost first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn storage(&self, field: String, storage: &str, out: &mut Vec<Refusal>) {
        for layer in &self.layers {
            if let Some(list) = &layer.allowances.storages
                && !list.iter().any(|s| s == storage)
            {
                out.push(Refusal {
                    field: field.clone(),
                    value: quoted(storage),
                    source: layer.source.clone(),
                    rule: "spec.allowed.storages",
                    allowed: listing(list),
                });
            }
        }
    }

    fn node(&self, field: String, node: &str, out: &mut Vec<Refusal>) {
        for layer in &self.layers {
            if let Some(list) = &layer.allowances.nodes
                && !list.iter().any(|n| n == node)
            {
                out.push(Refusal {
                    field: field.clone(),
                    value: quoted(node),
                    source: layer.source.clone(),
                    rule: "spec.allowed.nodes",
                    allowed: listing(list),
                });
            }
        }
    }

    /// Refuses `value` (of `field`) in every layer whose list (`list_of`, named `rule`) does
    /// not name it.
    fn listed(
        &self,
        field: String,
        value: &str,
        rule: &'static str,
        list_of: impl Fn(&Allowances) -> &Option<Vec<String>>,
        out: &mut Vec<Refusal>,
    ) {
        for layer in &self.layers {
            if let Some(list) = list_of(&layer.allowances)
                && !list.iter().any(|v| v == value)
            {
                out.push(Refusal {
                    field: field.clone(),
                    value: quoted(value),
                    source: layer.source.clone(),
                    rule,
                    allowed: listing(list),
                });
            }
        }
    }

    /// Checks everything the spec names that the allow-lists cover and that needs no look at
    /// Proxmox: nodes, storages, bridges and VLANs, PCI and USB mappings, the pool, and a
    /// template named literally.
    /// (A template is checked again by [`Policy::check_template`] once it is found, by both its
    /// VMID and its name.)
    pub fn check_spec(&self, spec: &MachineRequestSpec) -> Result<(), Refusals> {
        let mut out = Vec::new();
        if let Some(placement) = &spec.placement {
            if let Some(node) = &placement.node {
                self.node("spec.placement.node".into(), node, &mut out);
            }
            for (i, node) in placement.allowed_nodes.iter().flatten().enumerate() {
                self.node(format!("spec.placement.allowedNodes[{i}]"), node, &mut out);
            }
        }
        for (i, disk) in spec.disks.iter().enumerate() {
            self.storage(format!("spec.disks[{i}].storage"), &disk.storage, &mut out);
        }
        if let Some(iso) = &spec.boot.iso {
            let storage = iso.volume.split(':').next().unwrap_or_default();
            self.storage("spec.boot.iso.volume".into(), storage, &mut out);
        }
        if let Some(template) = &spec.boot.template {
            if let Some(storage) = &template.storage {
                self.storage("spec.boot.template.storage".into(), storage, &mut out);
            }
            for layer in &self.layers {
                if let Some(list) = &layer.allowances.templates {
                    let by_vmid = template
                        .vmid
                        .is_some_and(|v| list.iter().any(|t| t.vmid == Some(v)));
                    let by_name = template
                        .name
                        .as_ref()
                        .is_some_and(|n| list.iter().any(|t| t.name.as_ref() == Some(n)));
                    // A template named the other way round is decided once it is found.
                    let undecidable_yet = (template.vmid.is_some()
                        && list.iter().any(|t| t.name.is_some()))
                        || (template.name.is_some() && list.iter().any(|t| t.vmid.is_some()));
                    if !by_vmid && !by_name && !undecidable_yet {
                        out.push(Refusal {
                            field: template_field(template.vmid.is_some()),
                            value: template_value(template.vmid, template.name.as_deref()),
                            source: layer.source.clone(),
                            rule: "spec.allowed.templates",
                            allowed: describe_templates(list),
                        });
                    }
                }
            }
        }
        if let Some(cloud_init) = &spec.cloud_init
            && let Some(storage) = &cloud_init.storage
        {
            self.storage("spec.cloudInit.storage".into(), storage, &mut out);
        }
        if let Some(efi) = &spec.firmware.efi_disk {
            self.storage(
                "spec.firmware.efiDisk.storage".into(),
                &efi.storage,
                &mut out,
            );
        }
        if let Some(tpm) = &spec.firmware.tpm_state {
            self.storage(
                "spec.firmware.tpmState.storage".into(),
                &tpm.storage,
                &mut out,
            );
        }
        for (i, nic) in spec.networks.iter().enumerate() {
            for layer in &self.layers {
                let Some(list) = &layer.allowances.bridges else {
                    continue;
                };
                let entry = list.iter().find(|b| b.name == nic.bridge);
                let refused = match entry {
                    None => Some((format!("spec.networks[{i}].bridge"), quoted(&nic.bridge))),
                    Some(b) if !b.allows_vlan(nic.vlan) => Some(match nic.vlan {
                        Some(tag) => (format!("spec.networks[{i}].vlan"), tag.to_string()),
                        None => (
                            format!("spec.networks[{i}].vlan"),
                            format!("(untagged, on bridge {:?})", nic.bridge),
                        ),
                    }),
                    Some(_) => None,
                };
                if let Some((field, value)) = refused {
                    out.push(Refusal {
                        field,
                        value,
                        source: layer.source.clone(),
                        rule: "spec.allowed.bridges",
                        allowed: describe_bridges(list),
                    });
                }
            }
        }
        for (i, d) in spec.pci_devices.iter().enumerate() {
            let field = format!("spec.pciDevices[{i}].mapping");
            self.listed(
                field,
                &d.mapping,
                "spec.allowed.pciMappings",
                |a| &a.pci_mappings,
                &mut out,
            );
        }
        for (i, d) in spec.usb_devices.iter().enumerate() {
            let field = format!("spec.usbDevices[{i}].mapping");
            self.listed(
                field,
                &d.mapping,
                "spec.allowed.usbMappings",
                |a| &a.usb_mappings,
                &mut out,
            );
        }
        if let Some(pool) = &spec.pool {
            for layer in &self.layers {
                if let Some(list) = &layer.allowances.pools
                    && !list.iter().any(|p| p == pool)
                {
                    out.push(Refusal {
                        field: "spec.pool".into(),
                        value: quoted(pool),
                        source: layer.source.clone(),
                        rule: "spec.allowed.pools",
                        allowed: listing(list),
                    });
                }
            }
        }
        Refusals(out).into_result()
    }

    /// Checks a template found in Proxmox (VMID `vmid`, name `name`) against every layer's
    /// template list: it is allowed when its VMID or its name is listed. `by_vmid` says how the
    /// request named it, for the field in the message.
    pub fn check_template(&self, vmid: u32, name: &str, by_vmid: bool) -> Result<(), Refusals> {
        let mut out = Vec::new();
        for layer in &self.layers {
            if let Some(list) = &layer.allowances.templates
                && !list
                    .iter()
                    .any(|t| t.vmid == Some(vmid) || t.name.as_deref() == Some(name))
            {
                out.push(Refusal {
                    field: template_field(by_vmid),
                    value: format!("(template {vmid}, {name:?})"),
                    source: layer.source.clone(),
                    rule: "spec.allowed.templates",
                    allowed: describe_templates(list),
                });
            }
        }
        Refusals(out).into_result()
    }

    /// Checks a node the controller is about to use (a clone's template node), naming `field`.
    pub fn check_node(&self, field: &str, node: &str) -> Result<(), Refusals> {
        let mut out = Vec::new();
        self.node(field.to_string(), node, &mut out);
        Refusals(out).into_result()
    }

    /// Checks a storage the controller is about to use, naming `field` (e.g. a linked clone's
    /// disk on the template's storage).
    pub fn check_storage(&self, field: &str, storage: &str) -> Result<(), Refusals> {
        let mut out = Vec::new();
        self.storage(field.to_string(), storage, &mut out);
        Refusals(out).into_result()
    }

    /// The nodes placement may choose from (`None`: any).
    pub fn allowed_nodes(&self) -> Option<BTreeSet<String>> {
        self.layers
            .iter()
            .filter_map(|l| l.allowances.nodes.as_ref())
            .map(|list| list.iter().cloned().collect::<BTreeSet<_>>())
            .reduce(|a, b| a.intersection(&b).cloned().collect())
    }

    /// The VMIDs the controller may allocate and touch for the request: the intersection of
    /// every layer's range (`None`: any), or the refusal when they do not overlap.
    pub fn vmid_range(&self) -> Result<Option<VmidRange>, Refusals> {
        let mut range: Option<VmidRange> = None;
        for layer in &self.layers {
            let Some(r) = layer.allowances.vmid_range else {
                continue;
            };
            range = Some(match range {
                None => r,
                Some(current) => VmidRange {
                    min: current.min.max(r.min),
                    max: current.max.min(r.max),
                },
            });
        }
        match range {
            Some(r) if r.min > r.max => Err(Refusals(vec![Refusal {
                field: "spec.clusterRef".into(),
                value: "(its VMID range)".into(),
                source: self
                    .layers
                    .last()
                    .map(|l| l.source.clone())
                    .unwrap_or(Source("the policy".into())),
                rule: "spec.allowed.vmidRange",
                allowed: "no VMID: the ranges of the identity and the cluster do not overlap"
                    .into(),
            }])),
            other => Ok(other),
        }
    }

    /// Whether `vmid` is inside every layer's VMID range (a VM outside it is never touched).
    pub fn allows_vmid(&self, vmid: u32) -> bool {
        self.layers.iter().all(|l| {
            l.allowances
                .vmid_range
                .is_none_or(|r| (r.min..=r.max).contains(&vmid))
        })
    }

    /// Refuses a VMID recorded in status that lies outside a layer's range (set before the
    /// range was narrowed, or written by someone else): the VM there is not touched.
    pub fn check_recorded_vmid(&self, vmid: u32) -> Result<(), Refusals> {
        let out = self
            .layers
            .iter()
            .filter_map(|l| l.allowances.vmid_range.map(|r| (l, r)))
            .filter(|(_, r)| !(r.min..=r.max).contains(&vmid))
            .map(|(layer, r)| Refusal {
                field: "status.vmid".into(),
                value: format!("{vmid} (recorded earlier; the VM there is not touched)"),
                source: layer.source.clone(),
                rule: "spec.allowed.vmidRange",
                allowed: format!("{}-{}", r.min, r.max),
            })
            .collect();
        Refusals(out).into_result()
    }
}

fn template_field(by_vmid: bool) -> String {
    if by_vmid {
        "spec.boot.template.vmid".into()
    } else {
        "spec.boot.template.name".into()
    }
}

fn template_value(vmid: Option<u32>, name: Option<&str>) -> String {
    match (vmid, name) {
        (Some(vmid), _) => vmid.to_string(),
        (None, Some(name)) => quoted(name),
        (None, None) => "(none)".into(),
    }
}

/// Checks that a ProxmoxCluster's allowances (`cluster`, set by a tenant) only narrow its
/// identity's (`identity`, set by the admin): every list the identity restricts may only name
/// what it allows, and the VMID range must lie inside the identity's. `source` names the
/// identity in the messages.
pub fn check_narrowing(
    identity: &Allowances,
    cluster: &Allowances,
    source: &Source,
) -> Result<(), Refusals> {
    let mut out = Vec::new();
    let mut subset =
        |field: &'static str, wider: &Option<Vec<String>>, narrower: &Option<Vec<String>>| {
            if let (Some(wider), Some(narrower)) = (wider, narrower) {
                for (i, item) in narrower.iter().enumerate() {
                    if !wider.contains(item) {
                        out.push(Refusal {
                            field: format!("spec.allowed.{field}[{i}]"),
                            value: quoted(item),
                            source: source.clone(),
                            rule: match field {
                                "storages" => "spec.allowed.storages",
                                "pools" => "spec.allowed.pools",
                                "pciMappings" => "spec.allowed.pciMappings",
                                "usbMappings" => "spec.allowed.usbMappings",
                                _ => "spec.allowed.nodes",
                            },
                            allowed: listing(wider),
                        });
                    }
                }
            }
        };
    subset("storages", &identity.storages, &cluster.storages);
    subset("pools", &identity.pools, &cluster.pools);
    subset("nodes", &identity.nodes, &cluster.nodes);
    subset("pciMappings", &identity.pci_mappings, &cluster.pci_mappings);
    subset("usbMappings", &identity.usb_mappings, &cluster.usb_mappings);
    if let (Some(wider), Some(narrower)) = (&identity.templates, &cluster.templates) {
        for (i, t) in narrower.iter().enumerate() {
            if !wider.contains(t) {
                out.push(Refusal {
                    field: format!("spec.allowed.templates[{i}]"),
                    value: template_value(t.vmid, t.name.as_deref()),
                    source: source.clone(),
                    rule: "spec.allowed.templates",
                    allowed: format!(
                        "{} (name each template as the identity does)",
                        describe_templates(wider)
                    ),
                });
            }
        }
    }
    if let (Some(wider), Some(narrower)) = (&identity.bridges, &cluster.bridges) {
        for (i, bridge) in narrower.iter().enumerate() {
            let within = wider
                .iter()
                .find(|w| w.name == bridge.name)
                .is_some_and(|w| bridge_within(bridge, w));
            if !within {
                out.push(Refusal {
                    field: format!("spec.allowed.bridges[{i}]"),
                    value: describe_bridges(std::slice::from_ref(bridge)),
                    source: source.clone(),
                    rule: "spec.allowed.bridges",
                    allowed: describe_bridges(wider),
                });
            }
        }
    }
    images::narrowing_image_urls(identity, cluster, source, &mut out);
    if let (Some(wider), Some(narrower)) = (identity.vmid_range, cluster.vmid_range)
        && (narrower.min < wider.min || narrower.max > wider.max)
    {
        out.push(Refusal {
            field: "spec.allowed.vmidRange".into(),
            value: format!("{}-{}", narrower.min, narrower.max),
            source: source.clone(),
            rule: "spec.allowed.vmidRange",
            allowed: format!("{}-{}", wider.min, wider.max),
        });
    }
    Refusals(out).into_result()
}

/// Whether every tag (and untagged) that `narrower` allows is allowed by `wider`.
fn bridge_within(narrower: &BridgeAllowance, wider: &BridgeAllowance) -> bool {
    if narrower.allows_vlan(None) && !wider.allows_vlan(None) {
        return false;
    }
    match (&narrower.vlans, &wider.vlans) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(ranges), Some(_)) => ranges
            .iter()
            .all(|r| (r.min..=r.max).all(|tag| wider.allows_vlan(Some(tag)))),
    }
}

mod images;
#[cfg(test)]
mod tests;
