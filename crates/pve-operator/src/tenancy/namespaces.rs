//! Which namespaces an identity serves: `allowedNamespaces` (names and a label selector) as the
//! admin wrote it, evaluated against a namespace's name and labels with Kubernetes' own label
//! selector semantics.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use pve_operator_api::AllowedNamespaces;

/// The namespaces a connection serves.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceRule {
    /// Every namespace (`--default-allowed-namespaces='*'`).
    All,
    /// Those of a ProxmoxIdentity's `spec.allowedNamespaces`, or a list given on the command line.
    Allowed(AllowedNamespaces),
}

impl NamespaceRule {
    /// Exactly these namespaces.
    pub fn names(names: impl IntoIterator<Item = String>) -> Self {
        NamespaceRule::Allowed(AllowedNamespaces {
            list: names.into_iter().collect(),
            selector: None,
        })
    }

    /// Whether the rule needs namespace labels to decide (it has a selector).
    pub fn needs_labels(&self) -> bool {
        matches!(self, NamespaceRule::Allowed(a) if a.selector.is_some())
    }

    /// Whether namespace `name`, with `labels` (`None`: not known, e.g. not readable), may use
    /// the connection. A selector never matches a namespace whose labels are unknown.
    pub fn allows(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        match self {
            NamespaceRule::All => true,
            NamespaceRule::Allowed(allowed) => {
                allowed.list.iter().any(|n| n == name)
                    || match (&allowed.selector, labels) {
                        (Some(selector), Some(labels)) => selector_matches(selector, labels),
                        _ => false,
                    }
            }
        }
    }
}

/// Kubernetes label selector semantics: every `matchLabels` pair and every `matchExpressions`
/// requirement must hold; an empty selector matches everything. An unknown operator matches
/// nothing (the API server refuses such selectors, so this is only a safe default).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| requirement_holds(requirement, labels));
    pairs && expressions
}

fn requirement_holds(
    requirement: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let value = labels.get(&requirement.key);
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn no_list_and_no_selector_allows_no_namespace() {
        let rule = NamespaceRule::Allowed(AllowedNamespaces::default());
        assert!(!rule.allows("team-a", Some(&labels(&[("team", "a")]))));
        assert!(NamespaceRule::All.allows("anything", None));
    }

    #[test]
    fn a_listed_namespace_is_allowed_by_name_alone() {
        let rule = NamespaceRule::names(["team-a".to_string()]);
        assert!(rule.allows("team-a", None));
        assert!(!rule.allows("team-b", None));
        assert!(!rule.allows("team-a-evil", None), "names match exactly");
    }

    #[test]
    fn an_empty_selector_matches_every_namespace_whose_labels_are_known() {
        let rule = NamespaceRule::Allowed(AllowedNamespaces {
            list: vec![],
            selector: Some(LabelSelector::default()),
        });
        assert!(rule.allows("x", Some(&BTreeMap::new())));
        assert!(
            !rule.allows("x", None),
            "unknown labels never match a selector"
        );
        assert!(rule.needs_labels());
    }

    #[test]
    fn match_labels_and_every_expression_operator_follow_kubernetes() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("tenant", "yes")]).into_iter().collect()),
            match_expressions: Some(vec![
                requirement("team", "In", &["a", "b"]),
                requirement("frozen", "DoesNotExist", &[]),
                requirement("tier", "NotIn", &["prod"]),
                requirement("owner", "Exists", &[]),
            ]),
        };
        let ok = labels(&[("tenant", "yes"), ("team", "a"), ("owner", "x")]);
        assert!(selector_matches(&selector, &ok));
        for (key, value) in [
            ("tenant", "no"),
            ("team", "c"),
            ("frozen", "1"),
            ("tier", "prod"),
        ] {
            let mut changed = ok.clone();
            changed.insert(key.into(), value.into());
            assert!(!selector_matches(&selector, &changed), "{key}={value}");
        }
        let mut no_owner = ok.clone();
        no_owner.remove("owner");
        assert!(!selector_matches(&selector, &no_owner));
        let unknown = LabelSelector {
            match_expressions: Some(vec![requirement("team", "Matches", &["a"])]),
            ..LabelSelector::default()
        };
        assert!(!selector_matches(&unknown, &ok));
    }
}
