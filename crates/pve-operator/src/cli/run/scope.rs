//! Which objects the controller serves, from its flags: the namespaces of the default connection
//! (`--default-allowed-namespaces`) and the ProxmoxIdentities (`--identity-selector`).

use std::collections::{BTreeMap, BTreeSet};

use super::RunArgs;
use crate::tenancy::NamespaceRule;

/// The namespaces the default connection serves, from `--default-allowed-namespaces`: `*`
/// alone for every namespace; by default the watched namespace, else the controller's own.
pub(super) fn default_allowed_namespaces(
    args: &RunArgs,
    own_namespace: &str,
) -> anyhow::Result<NamespaceRule> {
    let listed: BTreeSet<String> = args
        .default_allowed_namespaces
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect();
    if listed.contains("*") {
        anyhow::ensure!(
            listed.len() == 1,
            "--default-allowed-namespaces: \"*\" already means every namespace; give it alone"
        );
        return Ok(NamespaceRule::All);
    }
    if let Some(bad) = listed.iter().find(|ns| !is_namespace_name(ns)) {
        anyhow::bail!(
            "--default-allowed-namespaces {bad:?} is not a namespace name (lowercase letters, digits and '-', at most 63), nor \"*\" (every namespace)"
        );
    }
    if let Some(watched) = &args.namespace
        && let Some(outside) = listed.iter().find(|ns| *ns != watched)
    {
        anyhow::bail!(
            "--default-allowed-namespaces {outside} is outside the watched namespace {watched} (--namespace): MachineRequests there are never seen; drop it or stop restricting --namespace"
        );
    }
    if listed.is_empty() {
        let own = args
            .namespace
            .clone()
            .unwrap_or_else(|| own_namespace.to_string());
        return Ok(NamespaceRule::names([own]));
    }
    Ok(NamespaceRule::names(listed))
}

/// The rule for the start-up log line.
pub(super) fn describe_rule(rule: &NamespaceRule) -> String {
    match rule {
        NamespaceRule::All => "*".to_string(),
        NamespaceRule::Allowed(allowed) => allowed.list.join(","),
    }
}

/// `--identity-selector` as labels.
pub(super) fn identity_labels(args: &RunArgs) -> anyhow::Result<BTreeMap<String, String>> {
    args.identity_selector
        .iter()
        .map(|pair| pair.trim())
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--identity-selector {pair:?} is not key=value")
            })?;
            anyhow::ensure!(
                !key.is_empty() && is_label_text(key) && is_label_text(value),
                "--identity-selector {pair:?}: keys and values are label names (letters, digits, '-', '_', '.', '/')"
            );
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

fn is_label_text(text: &str) -> bool {
    text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Labels as a label selector (`a=b,c=d`).
pub(super) fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A DNS-1123 label, as a namespace name must be.
pub(super) fn is_namespace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::super::args::parsed as run_args;
    use super::*;

    fn listed(rule: NamespaceRule) -> Vec<String> {
        match rule {
            NamespaceRule::Allowed(allowed) => allowed.list,
            NamespaceRule::All => vec!["*".into()],
        }
    }

    #[test]
    fn the_default_connection_serves_the_watched_or_the_controllers_own_namespace_unless_told() {
        let own = default_allowed_namespaces(&run_args(&[]), "pve-operator").expect("valid");
        assert_eq!(listed(own), ["pve-operator"]);
        let watched = run_args(&["--namespace=team-a"]);
        assert_eq!(
            listed(default_allowed_namespaces(&watched, "pve-operator").expect("valid")),
            ["team-a"]
        );
        let many = run_args(&[
            "--default-allowed-namespaces=b,a",
            "--default-allowed-namespaces",
            "c",
        ]);
        assert_eq!(
            listed(default_allowed_namespaces(&many, "x").expect("valid")),
            ["a", "b", "c"]
        );
        let all = run_args(&["--default-allowed-namespaces=*"]);
        assert_eq!(
            default_allowed_namespaces(&all, "x").expect("valid"),
            NamespaceRule::All
        );
        assert!(NamespaceRule::All.allows("anything", None));
    }

    #[test]
    fn a_default_allowed_namespace_outside_the_watched_one_is_refused_at_start_naming_both() {
        let outside = run_args(&["--namespace=team-a", "--default-allowed-namespaces=team-b"]);
        let error = default_allowed_namespaces(&outside, "x")
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("team-b") && error.contains("team-a"),
            "{error}"
        );
    }

    #[test]
    fn a_default_allowed_namespace_that_is_no_namespace_name_is_refused_at_start() {
        for bad in ["Team_A", "-a", &"a".repeat(64), "*,a"] {
            let args = run_args(&[&format!("--default-allowed-namespaces={bad}")]);
            let error = default_allowed_namespaces(&args, "x")
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("not a namespace name") || error.contains("give it alone"),
                "{bad}: {error}"
            );
        }
    }
}
