//! The allow-list rules of a ProxmoxImage: the URL it downloads from, its storage and its nodes.

use pve_operator_api::{Allowances, ProxmoxImageSpec, url_within};

use super::{Policy, Refusal, Refusals, Source, listing, quoted};

impl Policy {
    /// Checks a ProxmoxImage against every layer: its URL must lie within the identity's
    /// `imageUrls` (which must be given: an identity that names none allows no download) and
    /// within the cluster's when it gives them; its storage and nodes must be allowed as for a
    /// request.
    pub fn check_image(&self, spec: &ProxmoxImageSpec) -> Result<(), Refusals> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let is_identity = i == 0;
            match (&layer.allowances.image_urls, is_identity) {
                (None, false) => {}
                (None, true) => out.push(Refusal {
                    field: "spec.url".into(),
                    value: quoted(&spec.url),
                    source: layer.source.clone(),
                    rule: "spec.allowed.imageUrls",
                    allowed: "none: the identity names no URL prefix, and downloads are allowed \
                              only from the prefixes it names"
                        .into(),
                }),
                (Some(prefixes), _) => {
                    if !prefixes.iter().any(|p| url_within(&spec.url, p)) {
                        out.push(Refusal {
                            field: "spec.url".into(),
                            value: quoted(&spec.url),
                            source: layer.source.clone(),
                            rule: "spec.allowed.imageUrls",
                            allowed: listing(prefixes),
                        });
                    }
                }
            }
        }
        self.storage("spec.storage".into(), &spec.storage, &mut out);
        for (i, node) in spec.nodes.iter().flatten().enumerate() {
            self.node(format!("spec.nodes[{i}]"), node, &mut out);
        }
        Refusals(out).into_result()
    }
}

/// The refusals of a ProxmoxCluster's `imageUrls` that do not lie within one of its identity's
/// prefixes.
pub(super) fn narrowing_image_urls(
    identity: &Allowances,
    cluster: &Allowances,
    source: &Source,
    out: &mut Vec<Refusal>,
) {
    let Some(narrower) = &cluster.image_urls else {
        return;
    };
    let wider = identity.image_urls.as_deref().unwrap_or_default();
    for (i, prefix) in narrower.iter().enumerate() {
        if !wider.iter().any(|w| url_within(prefix, w)) {
            out.push(Refusal {
                field: format!("spec.allowed.imageUrls[{i}]"),
                value: quoted(prefix),
                source: source.clone(),
                rule: "spec.allowed.imageUrls",
                allowed: listing(wider),
            });
        }
    }
}
