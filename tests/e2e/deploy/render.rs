//! Everything the chart renders, in each scope it offers (the defaults, identity Secrets, the
//! default connection for some or every namespace, a watched namespace, every option): its RBAC
//! reaches the identities' Secrets only, by name, in the release's namespace; the controller's
//! arguments are ones the binary accepts; a server-side dry run accepts every object; the
//! options show up where they should.

use kube::Client;
use pve_client::PveConfig;
use serde_json::{Value, json};

use super::{
    documents, dry_run_apply, find, helm_template, kind_and_name, secret_rules,
    service_account_name,
};
use crate::support::{init_logging, shared_namespace};

/// A minimal ServiceMonitor CRD (monitoring.coreos.com/v1), so that the chart's optional
/// ServiceMonitor has a kind to be checked against. Its schema accepts any spec: the check is
/// that the chart's object is well-formed for the API server (apiVersion, kind, metadata).
async fn install_service_monitor_crd(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "servicemonitors.monitoring.coreos.com" },
        "spec": {
            "group": "monitoring.coreos.com",
            "names": { "kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor", "listKind": "ServiceMonitorList" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    }))
    .expect("CRD");
    testenv::apply_crds(client, &[crd], "e2e-deploy")
        .await
        .expect("the ServiceMonitor CRD applies and becomes Established");
}

/// The controller's arguments in the chart's Deployment.
fn deployment_args(docs: &[Value]) -> Vec<String> {
    find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

/// `flag` is among `args` once, as `flag=value`, when `value` is given, and not at all otherwise.
#[track_caller]
fn assert_flag(args: &[String], flag: &str, value: Option<&str>, what: &str) {
    let set: Vec<&String> = args.iter().filter(|a| a.starts_with(flag)).collect();
    match value {
        Some(value) => assert_eq!(set, vec![&format!("{flag}={value}")], "{what}: {args:?}"),
        None => assert!(set.is_empty(), "{what}: {set:?}"),
    }
}

/// The (kind, namespace) pairs of the objects that bind `role` (of `role_kind`) to the chart's
/// ServiceAccount `sa` in `ns`.
fn bindings_of(docs: &[Value], role_kind: &str, role: &str, sa: &str, ns: &str) -> Vec<String> {
    docs.iter()
        .filter(|d| {
            ["RoleBinding", "ClusterRoleBinding"].contains(&d["kind"].as_str().unwrap_or(""))
        })
        .filter(|d| d["roleRef"]["kind"] == role_kind && d["roleRef"]["name"] == role)
        .filter(|d| {
            d["subjects"] == json!([{ "kind": "ServiceAccount", "name": sa, "namespace": ns }])
        })
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap_or(""),
                d["metadata"]["namespace"].as_str().unwrap_or("(cluster)")
            )
        })
        .collect()
}

/// What one rendering of the chart must show about scope and Secrets.
struct Expected<'a> {
    /// `identitySecrets`: the names the Secret Role grants (none: no Secret rule at all).
    identity_secrets: &'a [&'a str],
    /// The value of `--default-allowed-namespaces`, when the chart passes one.
    default_allowed: Option<&'a str>,
    /// `watchNamespace`.
    watch: Option<&'a str>,
}

/// The rules of the `<fullname>-identities` ClusterRole, as the controller needs them.
fn identity_rules() -> Value {
    json!([
        { "apiGroups": ["pve-operator.dev"], "resources": ["proxmoxidentities"], "verbs": ["get", "list", "watch"] },
        { "apiGroups": ["pve-operator.dev"], "resources": ["proxmoxidentities/status"], "verbs": ["patch"] },
        { "apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"] },
    ])
}

/// Checks one rendering (release `pve-operator` in `ns`) against `expected`.
fn check_scope(what: &str, docs: &[Value], ns: &str, expected: &Expected) {
    let sa = service_account_name(docs);
    // The identities' Secrets: one Role in the release's namespace, by name, and nothing else
    // anywhere that reaches a Secret.
    let rules = secret_rules(docs);
    if expected.identity_secrets.is_empty() {
        assert_eq!(
            rules,
            vec![],
            "{what}: no Secret rule without identitySecrets"
        );
        assert!(
            !docs
                .iter()
                .any(|d| kind_and_name(d).ends_with("-identity-secrets")),
            "{what}: no identity-secrets Role or binding without identitySecrets"
        );
    } else {
        assert_eq!(
            rules,
            vec![(
                format!("Role {ns}/pve-operator-identity-secrets"),
                json!({
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": expected.identity_secrets,
                    "verbs": ["list", "watch"],
                })
            )],
            "{what}: the identities' Secrets exactly, in the release's namespace"
        );
        assert_eq!(
            bindings_of(docs, "Role", "pve-operator-identity-secrets", &sa, ns),
            vec![format!("RoleBinding {ns}")],
            "{what}: the Secret Role is bound to the chart's ServiceAccount, in its namespace"
        );
    }
    // The identities' ClusterRole, always, whatever the scope.
    let identities: Vec<&Value> = find(docs, "ClusterRole")
        .into_iter()
        .filter(|d| d["metadata"]["name"] == "pve-operator-identities")
        .collect();
    assert_eq!(identities.len(), 1, "{what}: the identities' ClusterRole");
    assert_eq!(identities[0]["rules"], identity_rules(), "{what}");
    assert_eq!(
        bindings_of(docs, "ClusterRole", "pve-operator-identities", &sa, ns),
        vec!["ClusterRoleBinding (cluster)".to_string()],
        "{what}"
    );
    // The controller's own rules: a Role in the watched namespace, or a ClusterRole.
    let controller = docs
        .iter()
        .filter(|d| d["metadata"]["name"] == "pve-operator")
        .filter(|d| ["Role", "ClusterRole"].contains(&d["kind"].as_str().unwrap_or("")))
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap_or(""),
                d["metadata"]["namespace"].as_str().unwrap_or("(cluster)")
            )
        })
        .collect::<Vec<_>>();
    let cluster_roles: Vec<String> = find(docs, "ClusterRole")
        .iter()
        .map(|d| kind_and_name(d))
        .collect();
    match expected.watch {
        Some(watched) => {
            assert_eq!(controller, vec![format!("Role {watched}")], "{what}");
            assert_eq!(
                cluster_roles,
                vec!["ClusterRole/pve-operator-identities".to_string()],
                "{what}: a namespace scope has no other ClusterRole"
            );
        }
        None => assert_eq!(
            controller,
            vec!["ClusterRole (cluster)".to_string()],
            "{what}"
        ),
    }
    // The flags: the identities' namespace is the pod's; the default connection's namespaces
    // only when given.
    let args = deployment_args(docs);
    assert_flag(
        &args,
        "--identity-namespace",
        Some("$(POD_NAMESPACE)"),
        what,
    );
    assert_flag(
        &args,
        "--default-allowed-namespaces",
        expected.default_allowed,
        what,
    );
    assert_flag(&args, "--namespace", expected.watch, what);
    // Every argument is one the binary accepts.
    let mut argv = vec!["pve-operator".to_string()];
    argv.extend(args.iter().map(|a| a.replace("$(POD_NAMESPACE)", ns)));
    let parsed = <pve_operator::cli::Cli as clap::Parser>::try_parse_from(&argv);
    assert!(
        parsed.is_ok(),
        "{what}: the binary rejects the chart's arguments: {:?}",
        parsed.err()
    );
}

#[tokio::test]
async fn everything_the_chart_renders_is_accepted_by_a_server_side_dry_run() {
    init_logging();
    let (env, client, ns) = shared_namespace("chart").await;
    install_service_monitor_crd(&client).await;
    let mut teams = Vec::new();
    for prefix in ["team-a", "team-b"] {
        teams.push(
            env.create_namespace(&client, prefix)
                .await
                .expect("namespace"),
        );
    }
    let watch_own = format!("watchNamespace={ns}");
    let watch_team = format!("watchNamespace={}", teams[0]);
    let allowed_teams = format!("proxmox.allowedNamespaces={{{}}}", teams.join(","));
    let allowed_team = format!("proxmox.allowedNamespaces={{{}}}", teams[0]);
    let teams_joined = teams.join(",");
    let variants: Vec<(&str, Vec<&str>, Expected)> = vec![
        (
            "defaults",
            vec![],
            Expected {
                identity_secrets: &[],
                default_allowed: None,
                watch: None,
            },
        ),
        (
            "two identity Secrets",
            vec!["identitySecrets={pve-admin,pve.backup}"],
            Expected {
                identity_secrets: &["pve-admin", "pve.backup"],
                default_allowed: None,
                watch: None,
            },
        ),
        (
            "identity Secrets given empty",
            vec!["--set-json=identitySecrets=[]"],
            Expected {
                identity_secrets: &[],
                default_allowed: None,
                watch: None,
            },
        ),
        (
            "the default connection for two namespaces",
            vec!["proxmox.existingSecret=my-proxmox", &allowed_teams],
            Expected {
                identity_secrets: &[],
                default_allowed: Some(&teams_joined),
                watch: None,
            },
        ),
        (
            "the default connection for every namespace",
            vec![
                "proxmox.existingSecret=my-proxmox",
                "proxmox.allowedNamespaces={*}",
            ],
            Expected {
                identity_secrets: &[],
                default_allowed: Some("*"),
                watch: None,
            },
        ),
        (
            "watching another namespace, identity Secrets in the release's",
            vec![&watch_team, "identitySecrets={pve-admin}", &allowed_team],
            Expected {
                identity_secrets: &["pve-admin"],
                default_allowed: Some(&teams[0]),
                watch: Some(&teams[0]),
            },
        ),
        (
            "every option",
            vec![
                &watch_own,
                "replicaCount=2",
                "identitySecrets={pve-admin}",
                "proxmox.config.url=https://pve.example:8006/api2/json",
                "proxmox.config.tokenID=omni@pve!omni-provider",
                "proxmox.config.tokenSecret=not-a-real-secret",
                "proxmox.config.insecureSkipVerify=true",
                "metrics.serviceMonitor.enabled=true",
                "networkPolicy.enabled=true",
            ],
            Expected {
                identity_secrets: &["pve-admin"],
                default_allowed: None,
                watch: Some(&ns),
            },
        ),
        (
            "existing secret, no leader election",
            vec![
                "proxmox.existingSecret=my-proxmox",
                "leaderElection.enabled=false",
            ],
            Expected {
                identity_secrets: &[],
                default_allowed: None,
                watch: None,
            },
        ),
    ];
    for (what, sets, expected) in &variants {
        let docs = documents(&helm_template(&ns, sets));
        let kinds: Vec<String> = docs.iter().map(kind_and_name).collect();
        for kind in [
            "CustomResourceDefinition",
            "ServiceAccount",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
        ] {
            assert!(
                !find(&docs, kind).is_empty(),
                "{what}: no {kind} in {kinds:?}"
            );
        }
        check_scope(what, &docs, &ns, expected);
        dry_run_apply(&client, &docs).await;
    }

    // The options show up where they should.
    let docs = documents(&helm_template(&ns, &variants[6].1));
    for kind in [
        "Role",
        "RoleBinding",
        "Secret",
        "ServiceMonitor",
        "NetworkPolicy",
    ] {
        assert!(!find(&docs, kind).is_empty(), "every option: no {kind}");
    }
    let secret = find(&docs, "Secret")[0];
    let config = secret["stringData"]["config.yaml"]
        .as_str()
        .expect("config.yaml");
    let parsed = PveConfig::from_yaml_str(config);
    assert!(
        parsed.is_ok(),
        "the rendered Secret is not in the source documents' format: {:?}",
        parsed.err()
    );
    let deployment = find(&docs, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env_names: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(env_names.contains(&"POD_NAME"), "{env_names:?}");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    for expected in [
        "run",
        "--leader-elect",
        "--config=/etc/pve-operator/config.yaml",
        &format!("--namespace={ns}"),
    ] {
        assert!(args.contains(&expected), "{expected} not in {args:?}");
    }
}
