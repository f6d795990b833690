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
    /// The URL prefixes ProxmoxImages may download from, e.g. `https://cloud.debian.org/images/`
    /// (each a scheme, a host and a path ending in `/`, or a whole URL). Unlike the other lists,
    /// omitting it on a ProxmoxIdentity allows no download at all: `download-url` makes a
    /// Proxmox node fetch the URL from inside your network, so which URLs a namespace may
    /// make it fetch is the identity's explicit decision. On a ProxmoxCluster, omitted narrows
    /// nothing, and each prefix must lie within one of the identity's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        inner(length(min = 8, max = 2048), pattern(patterns::URL_PREFIX))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub image_urls: Option<Vec<String>>,
}

impl Allowances {
    /// Whether `url` starts with one of the `imageUrls` prefixes (`None`: the list is omitted).
    /// The URL and the prefixes are compared as parsed by [`url_within`], so a prefix's host
    /// cannot be extended (`https://a.example` does not admit `https://a.example.evil.net/`)
    /// and `..` segments cannot climb out of its path.
    pub fn allows_image_url(&self, url: &str) -> Option<bool> {
        self.image_urls
            .as_ref()
            .map(|prefixes| prefixes.iter().any(|p| url_within(url, p)))
    }
}

/// Whether `url` lies within `prefix`: the same scheme and host (and port), and a path that
/// starts with the prefix's path, after both are normalised (dot segments resolved, as an HTTP
/// client does before it sends the request). A prefix whose path does not end in `/` matches
/// only that exact path (and its query).
pub fn url_within(url: &str, prefix: &str) -> bool {
    let (Some(url), Some(prefix)) = (split_url(url), split_url(prefix)) else {
        return false;
    };
    if url.origin != prefix.origin {
        return false;
    }
    if prefix.path.ends_with('/') {
        url.path.starts_with(&prefix.path)
    } else {
        url.path == prefix.path && (prefix.query.is_none() || url.query == prefix.query)
    }
}

/// A URL cut into its lower-cased `scheme://host[:port]`, its normalised path and its query.
struct SplitUrl {
    origin: String,
    path: String,
    query: Option<String>,
}

fn split_url(url: &str) -> Option<SplitUrl> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, rest) = rest.split_at(end);
    if host.is_empty() || host.contains(['@', '\\', ' ']) {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (raw_path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (rest, None),
    };
    Some(SplitUrl {
        origin: format!("{scheme}://{}", host.to_ascii_lowercase()),
        path: normalise_path(raw_path)?,
        query,
    })
}

/// `/a/./b/../c` → `/a/c`, with percent-encoded dots (`%2e`) counted as dots, as WHATWG URL
/// parsers do. `None` when the path climbs above the root or holds an encoded slash.
fn normalise_path(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        let last = i + 1 == segments.len();
        match dots.as_str() {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop()?;
                if last {
                    out.push("");
                }
            }
            _ => out.push(segment),
        }
    }
    Some(format!("/{}", out.join("/")))
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
    fn an_image_url_must_lie_within_a_prefix_by_host_and_normalised_path() {
        let within = |u: &str, p: &str| url_within(u, p);
        let prefix = "https://images.example.com/pub/";
        assert!(within(
            "https://images.example.com/pub/debian.qcow2",
            prefix
        ));
        assert!(within("HTTPS://Images.Example.com/pub/a/b.iso?x=1", prefix));
        assert!(!within(
            "https://images.example.com.evil.net/pub/a.iso",
            prefix
        ));
        assert!(!within("https://images.example.com:8443/pub/a.iso", prefix));
        assert!(!within("http://images.example.com/pub/a.iso", prefix));
        assert!(!within(
            "https://images.example.com/pub/../private/a.iso",
            prefix
        ));
        assert!(!within(
            "https://images.example.com/pub/%2e%2e/private/a.iso",
            prefix
        ));
        assert!(!within(
            "https://images.example.com/pub%2f..%2fprivate/a.iso",
            prefix
        ));
        assert!(!within("https://user@images.example.com/pub/a.iso", prefix));
        assert!(!within("https://images.example.com/public/a.iso", prefix));
        assert!(within(
            "https://images.example.com/pub/./x/../a.iso",
            prefix
        ));
        let exact = "https://images.example.com/pub/a.iso";
        assert!(within(exact, exact));
        assert!(!within("https://images.example.com/pub/a.iso.bak", exact));
        assert!(!within(
            "https://images.example.com/../a.iso",
            "https://images.example.com/"
        ));
    }

    #[test]
    fn omitted_image_urls_say_nothing_and_an_empty_list_allows_nothing() {
        let mut a = Allowances::default();
        assert_eq!(a.allows_image_url("https://x.example/a.iso"), None);
        a.image_urls = Some(vec![]);
        assert_eq!(a.allows_image_url("https://x.example/a.iso"), Some(false));
        a.image_urls = Some(vec!["https://x.example/".into()]);
        assert_eq!(a.allows_image_url("https://x.example/a.iso"), Some(true));
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
