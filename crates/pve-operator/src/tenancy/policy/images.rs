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

#[cfg(test)]
mod tests {
    use super::*;
    use pve_operator_api::{ChecksumAlgorithm, ImageChecksum, ImageContent, ImageDeletionPolicy};

    fn image(url: &str, storage: &str) -> ProxmoxImageSpec {
        ProxmoxImageSpec {
            cluster_ref: None,
            url: url.into(),
            checksum: ImageChecksum {
                algorithm: ChecksumAlgorithm::Sha256,
                value: "a".repeat(64),
            },
            content: ImageContent::Iso,
            format: None,
            storage: storage.into(),
            nodes: Some(vec!["pve9".into()]),
            deletion_policy: ImageDeletionPolicy::Keep,
        }
    }

    fn layer(urls: Option<&[&str]>, storages: Option<&[&str]>) -> Allowances {
        Allowances {
            image_urls: urls.map(|u| u.iter().map(|s| s.to_string()).collect()),
            storages: storages.map(|s| s.iter().map(|s| s.to_string()).collect()),
            nodes: Some(vec!["pve1".into()]),
            ..Allowances::default()
        }
    }

    #[test]
    fn an_identity_without_image_urls_allows_no_download_and_each_layer_must_admit_the_url() {
        let url = "https://images.example.com/pub/a.iso";
        let none = Policy::unrestricted()
            .with_layer(Source("ProxmoxIdentity \"t\"".into()), layer(None, None));
        let refusals = none.check_image(&image(url, "local")).expect_err("refused");
        let text = refusals.to_string();
        assert!(
            text.contains("spec.url") && text.contains("names no URL prefix"),
            "{text}"
        );
        assert!(text.contains("spec.nodes[0] \"pve9\""), "{text}");

        let narrowed = Policy::unrestricted()
            .with_layer(
                Source("ProxmoxIdentity \"t\"".into()),
                layer(Some(&["https://images.example.com/"]), Some(&["local"])),
            )
            .with_layer(
                Source("ProxmoxCluster \"c\"".into()),
                layer(Some(&["https://images.example.com/other/"]), None),
            );
        let mut ok = image(url, "local");
        ok.nodes = None;
        let text = narrowed
            .check_image(&ok)
            .expect_err("the cluster narrows")
            .to_string();
        assert!(text.contains("ProxmoxCluster \"c\""), "{text}");
        let mut other_storage = image("https://images.example.com/other/a.iso", "nfs");
        other_storage.nodes = None;
        let text = narrowed
            .check_image(&other_storage)
            .expect_err("storage")
            .to_string();
        assert!(text.contains("spec.storage \"nfs\""), "{text}");
        other_storage.storage = "local".into();
        assert!(narrowed.check_image(&other_storage).is_ok());
        assert!(Policy::unrestricted().check_image(&image(url, "x")).is_ok());
    }
}
