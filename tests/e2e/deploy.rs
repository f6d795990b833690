//! Deployment and operations on the real kube-apiserver: the Helm chart and the kustomize base
//! (lint, server-side dry-run of everything they render, drift against `crds/` and the chart),
//! values the chart refuses, the chart's RBAC (sufficient for the full lifecycle as its
//! ServiceAccount, no rule or verb to spare, only the identities' Secrets it lists, by name),
//! the operations endpoints (`/metrics` as OpenMetrics, `/readyz` only after the caches synced)
//! and leader election between two controller instances.
//!
//! helm and kustomize come from `hack/helm/build.sh` (built once from their Go modules and
//! cached), or from `PVE_OPERATOR_DEPLOY_TOOLS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, WatchParams,
};
use kube::discovery::{self, Scope};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, Config, ResourceExt};
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{OpsArgs, RunArgs, RunCommand, run_operator};
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

use crate::crds::install_crds;
use crate::support::{init_logging, within};
use crate::tenancy::{create_cluster_in, request_refused};

const CHART: &str = "../deploy/helm/pve-operator";
const KUSTOMIZE: &str = "../deploy/kustomize";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The directory holding `helm` and `kustomize`: `PVE_OPERATOR_DEPLOY_TOOLS`, else the
/// project's pinned build (built on first use).
fn tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PVE_OPERATOR_DEPLOY_TOOLS") {
            return PathBuf::from(dir);
        }
        let script = repo("../hack/helm/build.sh");
        let output = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("hack/helm/build.sh runs");
        assert!(
            output.status.success(),
            "hack/helm/build.sh failed; its message above says what to install, or set PVE_OPERATOR_DEPLOY_TOOLS"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
}

/// Runs a tool, failing the test with its stderr when it fails; returns stdout.
fn run_tool(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tools().join(tool))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `helm template` of the chart as release `pve-operator` in `namespace`, with `--set` values
/// (an entry that starts with `--` is passed as it is, e.g. `--set-json=key=[]`).
fn helm_template(namespace: &str, sets: &[&str]) -> String {
    helm_template_release("pve-operator", namespace, sets)
}

/// Like [`helm_template`], as release `release`: cluster-scoped objects (named after the
/// release) then do not collide with another test's on the shared control plane.
fn helm_template_release(release: &str, namespace: &str, sets: &[&str]) -> String {
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        if set.starts_with("--") {
            args.push(set);
        } else {
            args.extend(["--set", set]);
        }
    }
    run_tool("helm", &args)
}

/// The objects of a multi-document YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kind_and_name(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// Server-side apply of each object, as a dry run (nothing is stored), on the real API server.
async fn dry_run_apply(client: &Client, docs: &[Value]) {
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().expect("apiVersion");
        let kind = doc["kind"].as_str().expect("kind");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("{api_version} {kind} is served: {e}"));
        let name = doc["metadata"]["name"].as_str().expect("name");
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{} has a namespace", kind_and_name(doc)));
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            name,
            &PatchParams::apply("e2e-deploy").dry_run().force(),
            &Patch::Apply(doc),
        )
        .await
        .unwrap_or_else(|e| panic!("{} is accepted by a dry-run apply: {e}", kind_and_name(doc)));
    }
}

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
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "servicemonitors.monitoring.coreos.com",
        &PatchParams::apply("e2e-deploy").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("ServiceMonitor CRD applies");
    within(
        "the ServiceMonitor CRD to be Established",
        await_condition(
            crds,
            "servicemonitors.monitoring.coreos.com",
            kube::runtime::conditions::is_crd_established(),
        ),
    )
    .await
    .expect("watch works");
}

#[test]
fn helm_lint_passes_with_the_defaults_and_with_every_option_on() {
    let out = run_tool("helm", &["lint", "--strict", CHART]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let out = run_tool(
        "helm",
        &[
            "lint",
            "--strict",
            CHART,
            "--set",
            "watchNamespace=team-a",
            "--set",
            "replicaCount=2",
            "--set",
            "proxmox.config.url=https://pve.example:8006/api2/json",
            "--set",
            "proxmox.config.tokenID=omni@pve!omni-provider",
            "--set",
            "proxmox.config.tokenSecret=not-a-real-secret",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
        ],
    );
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

/// `helm template` with `sets` that the chart must refuse: the error (stderr).
fn helm_template_refused(sets: &[&str]) -> String {
    let mut args = vec!["template", "pve-operator", CHART, "--namespace", "ops"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let output = Command::new(tools().join("helm"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("helm runs");
    assert!(
        !output.status.success(),
        "helm accepted {sets:?}:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_chart_refuses_bad_values_naming_the_value_and_what_is_wrong() {
    // (values, words the error must contain)
    let cases: &[(&[&str], &[&str])] = &[
        // values.schema.json: a misspelt key is not silently ignored.
        (
            &["leaderElection.leaseDuraton=30"],
            &["leaderElection", "leaseDuraton", "not allowed"],
        ),
        (&["replicaCount=two"], &["replicaCount", "integer"]),
        (&["logging.format=yaml"], &["logging/format"]),
        // identitySecrets: Secret names (DNS subdomains), each once.
        (
            &["identitySecrets={Bad_Name}"],
            &["identitySecrets/0", "Bad_Name", "does not match pattern"],
        ),
        (
            &["identitySecrets={ok,team/secret}"],
            &["identitySecrets/1", "team/secret", "does not match pattern"],
        ),
        // (`--set 'identitySecrets={}'` is a list of one empty name.)
        (
            &["identitySecrets={}"],
            &["identitySecrets/0", "does not match pattern"],
        ),
        (
            &["identitySecrets={pve-admin,pve-admin}"],
            &["identitySecrets", "are equal"],
        ),
        // proxmox.allowedNamespaces: namespace names or "*".
        (
            &["proxmox.allowedNamespaces={Team_A}"],
            &["proxmox/allowedNamespaces/0", "Team_A", "value must be '*'"],
        ),
        // Rules across values, from the templates.
        (
            &["leaderElection.renewInterval=10"],
            &["renewInterval (10s)", "leaseDuration (15s)"],
        ),
        (
            &["proxmox.allowedNamespaces={team-a,*}"],
            &[
                "proxmox.allowedNamespaces",
                "\"*\" already means every namespace",
                "give it alone",
            ],
        ),
        (
            &[
                "watchNamespace=team-a",
                "proxmox.allowedNamespaces={team-b}",
            ],
            &[
                "proxmox.allowedNamespaces [\"team-b\"]",
                "watchNamespace \"team-a\"",
                "leave proxmox.allowedNamespaces empty",
            ],
        ),
        (
            &[
                "watchNamespace=team-a",
                "proxmox.allowedNamespaces={team-a,team-b}",
            ],
            &[
                "proxmox.allowedNamespaces",
                "team-b",
                "leave proxmox.allowedNamespaces empty",
            ],
        ),
        (
            &["watchNamespace=team-a", "proxmox.allowedNamespaces={*}"],
            &[
                "proxmox.allowedNamespaces [\"*\"]",
                "watchNamespace \"team-a\"",
            ],
        ),
    ];
    for (sets, words) in cases {
        let error = helm_template_refused(sets);
        for word in *words {
            assert!(error.contains(word), "{sets:?}: {word:?} not in {error}");
        }
    }
}

/// The files of a directory, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read(&p).expect("readable"),
            )
        })
        .collect()
}

#[test]
fn the_chart_and_the_kustomize_base_carry_exactly_the_committed_crds() {
    let committed = files(&repo("../crds"));
    assert!(!committed.is_empty());
    for copy in [
        "../deploy/helm/pve-operator/crds",
        "../deploy/kustomize/crds",
    ] {
        let copied = files(&repo(copy));
        assert_eq!(
            copied.keys().collect::<Vec<_>>(),
            committed.keys().collect::<Vec<_>>(),
            "{copy} holds other files than crds/; copy crds/*.yaml there"
        );
        for (name, text) in &committed {
            assert!(
                copied[name] == *text,
                "{copy}/{name} differs from crds/{name}; copy crds/*.yaml there (cp crds/*.yaml {})",
                copy.trim_start_matches("../")
            );
        }
    }
}

/// Every rule of a Role or ClusterRole that can reach Secrets (names them, or any resource of
/// the core group), as (`Role <namespace>/<name>` or `ClusterRole <name>`, the rule).
fn secret_rules(docs: &[Value]) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or("");
        if !["Role", "ClusterRole"].contains(&kind) {
            continue;
        }
        let place = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => format!(
                "{kind} {ns}/{}",
                doc["metadata"]["name"].as_str().unwrap_or("?")
            ),
            None => format!("{kind} {}", doc["metadata"]["name"].as_str().unwrap_or("?")),
        };
        for rule in doc["rules"].as_array().into_iter().flatten() {
            let has = |field: &str, value: &str| {
                rule[field]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == value || x == "*"))
            };
            if has("apiGroups", "") && has("resources", "secrets") {
                found.push((place.clone(), rule.clone()));
            }
        }
    }
    found
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
    let sa = find(docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
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
    assert_eq!(
        args.iter()
            .filter(|a| a.starts_with("--identity-namespace"))
            .collect::<Vec<_>>(),
        vec!["--identity-namespace=$(POD_NAMESPACE)"],
        "{what}: {args:?}"
    );
    let allowed: Vec<&String> = args
        .iter()
        .filter(|a| a.starts_with("--default-allowed-namespaces"))
        .collect();
    match expected.default_allowed {
        Some(value) => assert_eq!(
            allowed,
            vec![&format!("--default-allowed-namespaces={value}")],
            "{what}"
        ),
        None => assert!(allowed.is_empty(), "{what}: {allowed:?}"),
    }
    let namespace_flags: Vec<&String> = args
        .iter()
        .filter(|a| a.starts_with("--namespace"))
        .collect();
    match expected.watch {
        Some(watched) => assert_eq!(
            namespace_flags,
            vec![&format!("--namespace={watched}")],
            "{what}"
        ),
        None => assert!(namespace_flags.is_empty(), "{what}: {namespace_flags:?}"),
    }
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
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    install_service_monitor_crd(&client).await;
    let ns = env
        .create_namespace(&client, "chart")
        .await
        .expect("namespace");
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

/// The `--set` values that render the kustomize base from the chart.
const KUSTOMIZE_SETS: &[&str] = &[
    "managedBy=kustomize",
    "proxmox.existingSecret=pve-operator-proxmox",
];

#[tokio::test]
async fn kustomize_base_is_the_chart_rendered_and_is_accepted_by_a_server_side_dry_run() {
    init_logging();
    // The base's resources are what the chart renders with its defaults.
    let rendered = {
        let mut args = vec![
            "template",
            "pve-operator",
            CHART,
            "--namespace",
            "pve-operator",
        ];
        for set in KUSTOMIZE_SETS {
            args.extend(["--set", set]);
        }
        run_tool("helm", &args)
    };
    let header = "# Generated from deploy/helm/pve-operator: helm template pve-operator deploy/helm/pve-operator \\\n#   --namespace pve-operator --set managedBy=kustomize --set proxmox.existingSecret=pve-operator-proxmox\n# Regenerate: PVE_OPERATOR_UPDATE_DEPLOY=1 cargo test -p pve-operator-tests deploy::kustomize\n";
    let expected = format!("{header}{rendered}");
    let path = repo("../deploy/kustomize/pve-operator.yaml");
    if std::env::var_os("PVE_OPERATOR_UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &expected).expect("written");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "deploy/kustomize/pve-operator.yaml differs from what the chart renders; regenerate it with \
         PVE_OPERATOR_UPDATE_DEPLOY=1 cargo test -p pve-operator-tests deploy::kustomize"
    );

    let built = run_tool("kustomize", &["build", KUSTOMIZE]);
    let docs = documents(&built);
    let kinds: Vec<String> = docs.iter().map(kind_and_name).collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(!find(&docs, kind).is_empty(), "no {kind} in {kinds:?}");
    }
    // Every CRD of crds/, each once (kustomization.yaml lists them one by one).
    let mut committed: Vec<String> = files(&repo("../crds"))
        .values()
        .flat_map(|text| documents(std::str::from_utf8(text).expect("UTF-8")))
        .map(|d| kind_and_name(&d))
        .collect();
    committed.sort();
    let mut built: Vec<String> = find(&docs, "CustomResourceDefinition")
        .into_iter()
        .map(kind_and_name)
        .collect();
    built.sort();
    assert_eq!(
        built, committed,
        "the base's CRDs are not crds/'s; list each file of deploy/kustomize/crds in deploy/kustomize/kustomization.yaml"
    );
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    // Namespaced objects need their namespace to exist, even in a dry run.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = find(&docs, "Namespace")[0];
    namespaces
        .patch(
            "pve-operator",
            &PatchParams::apply("e2e-deploy").force(),
            &Patch::Apply(namespace),
        )
        .await
        .expect("namespace pve-operator");
    dry_run_apply(&client, &docs).await;

    // The overlay that kustomization.yaml's comment shows for an identity's Secret grants what
    // the chart grants for it, and builds on the base.
    let kustomization =
        std::fs::read_to_string(repo("../deploy/kustomize/kustomization.yaml")).expect("readable");
    let example: String = kustomization
        .lines()
        .skip_while(|l| !l.contains("a RoleBinding to the ServiceAccount:"))
        .skip(2)
        .take_while(|l| *l != "#")
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix("#   ").unwrap_or_else(|| panic!("{l:?}"))
            )
        })
        .collect();
    let shown = documents(&example);
    assert_eq!(
        shown.iter().map(kind_and_name).collect::<Vec<_>>(),
        [
            "Role/pve-operator-identity-secrets",
            "RoleBinding/pve-operator-identity-secrets"
        ],
        "the overlay example in kustomization.yaml:\n{example}"
    );
    let mut sets = KUSTOMIZE_SETS.to_vec();
    sets.push("identitySecrets={pve-admin}");
    let chart = documents(&helm_template("pve-operator", &sets));
    for doc in &shown {
        let rendered = chart
            .iter()
            .find(|d| kind_and_name(d) == kind_and_name(doc))
            .unwrap_or_else(|| panic!("the chart renders no {}", kind_and_name(doc)));
        for field in ["rules", "roleRef", "subjects"] {
            assert_eq!(
                doc[field],
                rendered[field],
                "{} {field}: the example differs from the chart's identitySecrets",
                kind_and_name(doc)
            );
        }
        assert_eq!(doc["metadata"]["namespace"], "pve-operator");
    }
    let overlay = tempfile::tempdir().expect("temp dir");
    std::fs::write(overlay.path().join("identity-secrets.yaml"), &example).expect("written");
    // (kustomize takes a base by a relative path only.)
    let dir = overlay.path().canonicalize().expect("temp dir");
    let base = repo(KUSTOMIZE).canonicalize().expect("the base");
    let up = "../".repeat(dir.components().count() - 1);
    let base = format!(
        "{up}{}",
        base.strip_prefix("/").expect("absolute").display()
    );
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("resources:\n  - {base}\n  - identity-secrets.yaml\n"),
    )
    .expect("written");
    let built = documents(&run_tool(
        "kustomize",
        &["build", &dir.display().to_string()],
    ));
    assert_eq!(
        secret_rules(&built),
        secret_rules(&shown),
        "the overlay adds exactly the example's Secret rule"
    );
    dry_run_apply(&client, &built).await;
}

// ---------------------------------------------------------------------------------------------
// A controller running as the chart's ServiceAccount.

/// The chart's RBAC and ServiceAccount for a controller watching `ns`, with the identity Secret
/// `identity_secret` granted: release `ns` in `ns`, so that the cluster-scoped objects (named
/// after the release) are this test's own on the shared control plane.
fn chart_rbac(ns: &str, identity_secret: &str) -> Vec<Value> {
    let watch = format!("watchNamespace={ns}");
    let secrets = format!("identitySecrets={{{identity_secret}}}");
    documents(&helm_template_release(ns, ns, &[&watch, &secrets]))
        .into_iter()
        .filter(|d| {
            [
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
            ]
            .contains(&d["kind"].as_str().unwrap_or(""))
        })
        .collect()
}

async fn apply_object(client: &Client, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().expect("kind"));
    let resource = ApiResource::from_gvk(&gvk);
    let resource = ApiResource {
        plural: match resource.kind.as_str() {
            "ServiceAccount" => "serviceaccounts".into(),
            "Role" => "roles".into(),
            "RoleBinding" => "rolebindings".into(),
            "ClusterRole" => "clusterroles".into(),
            "ClusterRoleBinding" => "clusterrolebindings".into(),
            other => panic!("apply_object does not know {other}"),
        },
        ..resource
    };
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        doc["metadata"]["name"].as_str().expect("name"),
        &PatchParams::apply("e2e-deploy").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("{} applies: {e}", kind_and_name(doc)));
}

/// A client that authenticates with a TokenRequest token of `service_account` (not as admin).
async fn service_account_client(
    admin: &Client,
    base: &Config,
    ns: &str,
    service_account: &str,
) -> Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", service_account, &PostParams::default(), &request)
        .await
        .expect("the API server issues a ServiceAccount token");
    let token = issued.status.expect("token status").token;
    let mut config = base.clone();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..kube::config::AuthInfo::default()
    };
    Client::try_from(config).expect("token client")
}

/// A simulator and the config file of the controller's default connection.
struct Proxmox {
    sim: RunningSim,
    pve: PveClient,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxmox {
    async fn start() -> Proxmox {
        let sim = SimServer::start(SimOptions::new("deploy-root-password"))
            .await
            .expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("proxmox.yaml");
        let text = format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root@pam\n  password: \"{}\"\n",
            sim.url(),
            sim.fingerprint(),
            sim.root_password()
        );
        std::fs::write(&config, &text).expect("config written");
        let pve = PveClient::new(&PveConfig::from_yaml_str(&text).expect("config parses"))
            .expect("pve client");
        Proxmox {
            sim,
            pve,
            config,
            _dir: dir,
        }
    }

    /// The controller's VMs (tagged `pve-operator`; the simulator's template is not): (vmid,
    /// name, tags).
    async fn vms(&self) -> Vec<(u32, String, String)> {
        self.pve
            .cluster_resources(None)
            .await
            .expect("resources")
            .iter()
            .filter_map(|r| {
                Some((
                    r.vmid?,
                    r.name.clone().unwrap_or_default(),
                    r.tags.clone().unwrap_or_default(),
                ))
            })
            .filter(|(_, _, tags)| tags.split(';').any(|t| t == "pve-operator"))
            .collect()
    }

    async fn vm_count(&self) -> usize {
        self.vms().await.len()
    }
}

/// One controller instance (`pve-operator run`, in this process) with its endpoints on a
/// loopback port.
struct Instance {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

struct InstanceOptions<'a> {
    ns: &'a str,
    config: &'a Path,
    leader_elect: bool,
    identity: &'a str,
    lease_duration: u64,
}

impl Instance {
    async fn start(client: Client, options: InstanceOptions<'_>) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("address");
        let command = RunCommand {
            controller: RunArgs {
                config: Some(options.config.to_path_buf()),
                namespace: Some(options.ns.to_string()),
                // The identities' Secrets in the test's namespace (as the chart's
                // $(POD_NAMESPACE) would be), and only the identities this test labels: they are
                // cluster-scoped, and other tests' controllers serve theirs.
                identity_namespace: Some(options.ns.to_string()),
                identity_selector: vec![format!("{IDENTITY_LABEL}={}", options.ns)],
                inventory_interval: 1,
                task_poll_interval: 100,
                resync_interval: 0,
                shutdown_grace: 5,
                ..RunArgs::default()
            },
            ops: OpsArgs {
                metrics_addr: addr,
                leader_elect: options.leader_elect,
                lease_name: "pve-operator-leader".into(),
                lease_namespace: Some(options.ns.to_string()),
                lease_duration: options.lease_duration,
                lease_renew_interval: 1,
                leader_identity: Some(options.identity.to_string()),
            },
        };
        Instance::launch(client, command, listener)
    }

    /// Runs `command` with its endpoints on `listener` (whatever its --metrics-addr says).
    fn launch(client: Client, command: RunCommand, listener: tokio::net::TcpListener) -> Instance {
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_operator(command, client, listener, async {
            let _ = stopped.await;
        }));
        Instance {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// GET `path`; the status code and the body.
    async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("the endpoints accept connections");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("request sent");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status code");
        (code, body.to_string())
    }

    async fn metrics(&self) -> Metrics {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        Metrics::parse(&body)
    }

    /// `/metrics` as the Prometheus project's reference OpenMetrics parser reads it (it fails
    /// the test on anything the format does not allow): family name to (type, sample count).
    async fn metrics_by_reference_parser(&self) -> BTreeMap<String, (String, usize)> {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        // (hack/pyenv.sh may build the venv: not on this runtime's only thread, which also
        // renews the instance's Lease.)
        let python = tokio::task::spawn_blocking(crate::third_party::python_env)
            .await
            .expect("python_env")
            .join("bin/python");
        let script = repo("thirdparty/openmetrics_check.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body.as_bytes()).await.expect("scrape sent");
        }
        let output = within("the OpenMetrics parser", child.wait_with_output())
            .await
            .expect("parser output");
        assert!(
            output.status.success(),
            "the reference parser refuses /metrics: {}\n{body}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let mut parts = line.split(' ');
                let name = parts.next().unwrap_or_default().to_string();
                let kind = parts.next().unwrap_or_default().to_string();
                let count = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                (name, (kind, count))
            })
            .collect()
    }

    /// Stops gracefully (SIGTERM) and returns what the run returned.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        within("the instance to stop", task)
            .await
            .expect("no panic")
    }

    /// Stops abruptly, as a crash would: no release of the Lease, nothing finishes.
    async fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A scrape, checked against the OpenMetrics text format: `# TYPE`/`# HELP`/`# UNIT` lines,
/// samples of declared families with well-formed labels and float values, `# EOF` at the end.
#[derive(Debug)]
struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
        let mut families: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let keyword = parts.next().unwrap_or_default();
                let name = parts.next().expect("metric name").to_string();
                let value = parts.next().unwrap_or_default();
                match keyword {
                    "TYPE" => {
                        assert!(
                            [
                                "counter",
                                "gauge",
                                "histogram",
                                "summary",
                                "info",
                                "stateset",
                                "unknown",
                                "gaugehistogram"
                            ]
                            .contains(&value),
                            "unknown type in {line}"
                        );
                        assert!(
                            families.insert(name, value.to_string()).is_none(),
                            "family declared twice: {line}"
                        );
                    }
                    "HELP" | "UNIT" => {}
                    other => panic!("unknown descriptor {other}: {line}"),
                }
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample: {line}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (
                    name,
                    parse_labels(rest.strip_suffix('}').expect("closing brace")),
                ),
                None => (series, BTreeMap::new()),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name}"
            );
            let family = families
                .iter()
                .filter(|(f, _)| name.starts_with(f.as_str()))
                .max_by_key(|(f, _)| f.len())
                .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
            let suffix = &name[family.0.len()..];
            let allowed: &[&str] = match family.1.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            assert!(
                allowed.contains(&suffix),
                "{name} is not a sample of {} {}",
                family.1,
                family.0
            );
            samples.push((name.to_string(), labels, value));
        }
        Metrics { samples }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {text}"));
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {key}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("escape at the end of {text}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

async fn wait_ready(requests: &Api<MachineRequest>, name: &str) -> MachineRequest {
    let ready = |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    within(
        &format!("{name} to become Ready"),
        await_condition(requests.clone(), name, ready),
    )
    .await
    .expect("watch works")
    .expect("the request exists")
}

async fn apply_request(requests: &Api<MachineRequest>, name: &str) {
    apply_request_on(requests, name, None).await
}

/// Applies a small ISO-booted MachineRequest, on the ProxmoxCluster `cluster` if given.
async fn apply_request_on(requests: &Api<MachineRequest>, name: &str, cluster: Option<&str>) {
    let mut request = json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "MachineRequest",
        "metadata": { "name": name },
        "spec": {
            "cpu": { "cores": 1 },
            "memory": { "sizeMiB": 512 },
            "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
            "networks": [{ "name": "net0", "bridge": "vmbr0" }],
            "boot": { "iso": { "volume": "local:iso/debian-12.7.0-amd64-netinst.iso" } },
        },
    });
    if let Some(cluster) = cluster {
        request["spec"]["clusterRef"] = json!({ "name": cluster });
    }
    requests
        .patch(
            name,
            &PatchParams::apply("e2e-deploy").force(),
            &Patch::Apply(&request),
        )
        .await
        .expect("MachineRequest applies");
}

async fn delete_and_wait_gone(requests: &Api<MachineRequest>, name: &str) {
    requests
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete accepted");
    within(
        "the MachineRequest to be gone (finalizer released)",
        await_condition(requests.clone(), name, |o: Option<&MachineRequest>| {
            o.is_none()
        }),
    )
    .await
    .expect("watch works");
}

/// Polls `probe` until it returns true (every 50 ms, at most 60 s).
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut probe: impl FnMut() -> F) {
    within(what, async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("pve-operator-leader")
        .await
        .expect("lease readable")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn as_the_charts_service_account_the_controller_is_unready_until_its_caches_sync_then_runs_the_lifecycle_with_metrics()
 {
    init_logging();
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let admin = env.client().expect("client");
    install_crds(&admin).await;
    let ns = env
        .create_namespace(&admin, "chart-sa")
        .await
        .expect("namespace");
    let rbac = chart_rbac(&ns, "sa-identity");
    // (The ServiceAccount is named as the release, like the controller's Role and binding.)
    let sa = find(&rbac, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    // Everything but the binding of the controller's Role: its caches cannot fill yet.
    let main_binding = rbac
        .iter()
        .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["name"] == sa.as_str())
        .expect("the controller's RoleBinding")
        .clone();
    for doc in rbac.iter().filter(|d| **d != main_binding) {
        apply_object(&admin, doc).await;
    }
    let client = service_account_client(&admin, env.config(), &ns, &sa).await;
    let proxmox = Proxmox::start().await;
    let instance = Instance::start(
        client,
        InstanceOptions {
            ns: &ns,
            config: &proxmox.config,
            leader_elect: true,
            identity: "sa-instance",
            lease_duration: 15,
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    until(
        "the instance to take the Lease with the chart's Role",
        || async { lease_holder(&leases).await.as_deref() == Some("sa-instance") },
    )
    .await;
    // Leading, but the MachineRequest list is forbidden: the cache cannot sync.
    until("the endpoints to answer", || async {
        instance.get("/healthz").await.0 == 200
    })
    .await;
    let (code, body) = instance.get("/readyz").await;
    assert_eq!(code, 503, "ready before the caches synced: {body}");
    assert!(body.contains("not synced"), "{body}");

    apply_object(&admin, &main_binding).await;
    until("/readyz to turn ready once the caches sync", || async {
        instance.get("/readyz").await.0 == 200
    })
    .await;

    let before = instance.metrics().await;
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &ns);
    apply_request(&requests, "sa-vm").await;
    let ready = wait_ready(&requests, "sa-vm").await;
    assert!(ready.status.as_ref().and_then(|s| s.vmid).is_some());
    assert_eq!(proxmox.vm_count().await, 1);
    let after = instance.metrics().await;
    let reconciles = |m: &Metrics| {
        m.sum(
            "pve_operator_reconciles_total",
            &[("controller", "machinerequest"), ("outcome", "success")],
        )
    };
    assert!(
        reconciles(&after) > reconciles(&before),
        "reconciles did not move: {} -> {}",
        reconciles(&before),
        reconciles(&after)
    );
    assert!(after.has("pve_operator_reconcile_duration_seconds_bucket"));
    assert!(
        after.sum(
            "pve_operator_proxmox_requests_total",
            &[("endpoint", "/nodes/{node}/qemu"), ("method", "POST")]
        ) >= 1.0,
        "the create call is counted by endpoint template"
    );
    assert!(after.has("pve_operator_proxmox_request_duration_seconds_count"));
    // The same scrape format, judged by the Prometheus project's own parser.
    let families = instance.metrics_by_reference_parser().await;
    for (family, kind) in [
        ("pve_operator_reconciles", "counter"),
        ("pve_operator_reconcile_duration_seconds", "histogram"),
        ("pve_operator_proxmox_requests", "counter"),
        ("pve_operator_proxmox_request_duration_seconds", "histogram"),
        ("pve_operator_proxmox_tasks_in_flight", "gauge"),
        ("pve_operator_machine_requests", "gauge"),
    ] {
        let found = families.get(family);
        assert!(
            found.is_some_and(|(k, samples)| k == kind && *samples > 0),
            "{family}: want a {kind} with samples, the parser read {found:?} (all: {families:?})"
        );
    }
    until("the phase gauge to show the running VM", || async {
        instance
            .metrics()
            .await
            .sum("pve_operator_machine_requests", &[("phase", "Running")])
            == 1.0
    })
    .await;
    // The ProxmoxIdentity and ProxmoxCluster controllers work as the ServiceAccount too (the
    // identity's Secret through the chart's Secret Role), and are counted.
    let config = std::fs::read_to_string(&proxmox.config).expect("config");
    put_secret(&admin, &ns, "sa-identity", &config).await;
    let identity = format!("{ns}-sa");
    create_identity(&admin, &identity, "sa-identity", &[&ns], &ns).await;
    identity_condition(&admin, &identity, "Ready", "True").await;
    create_cluster_in(&admin, &ns, "pve", &identity, json!({})).await;
    let clusters: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &ns);
    cluster_condition(&clusters, "pve", "Ready", "True").await;
    apply_request_on(&requests, "sa-vm-on-pve", Some("pve")).await;
    wait_ready(&requests, "sa-vm-on-pve").await;
    assert_eq!(proxmox.vm_count().await, 2);
    // (Counted when the reconcile returns, just after its status write.)
    for controller in ["proxmoxcluster", "proxmoxidentity"] {
        until(
            &format!("the {controller} reconcile to be counted"),
            || async {
                instance.metrics().await.sum(
                    "pve_operator_reconciles_total",
                    &[("controller", controller), ("outcome", "success")],
                ) >= 1.0
            },
        )
        .await;
    }
    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), &ns);
    assert!(
        !events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .is_empty(),
        "the ServiceAccount could publish Events"
    );

    delete_and_wait_gone(&requests, "sa-vm").await;
    delete_and_wait_gone(&requests, "sa-vm-on-pve").await;
    assert_eq!(proxmox.vm_count().await, 0, "the VMs are destroyed");

    instance.stop().await.expect("a clean stop");
    assert_eq!(
        lease_holder(&leases).await,
        None,
        "a graceful stop releases the Lease"
    );
    proxmox.sim.shutdown().await;
}

/// The controller's `run` options exactly as the chart's Deployment passes them (with the pod's
/// `$(POD_NAMESPACE)` expanded as the kubelet would), the config file and the endpoints' address
/// swapped for local ones.
fn chart_run_command(docs: &[Value], pod_namespace: &str, config: &Path) -> RunCommand {
    let deployment = find(docs, "Deployment")[0];
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .map(|a| a.replace("$(POD_NAMESPACE)", pod_namespace))
        .filter(|a| !a.starts_with("--config=") && !a.starts_with("--metrics-addr="))
        .collect();
    let mut argv = vec!["pve-operator".to_string()];
    argv.extend(args);
    argv.push(format!("--config={}", config.display()));
    argv.push("--metrics-addr=127.0.0.1:0".into());
    let cli = <pve_operator::cli::Cli as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("the binary rejects the chart's arguments {argv:?}: {e}"));
    match cli.command {
        pve_operator::cli::Command::Run(mut command) => {
            command.ops.lease_namespace = Some(pod_namespace.to_string());
            command.ops.leader_identity = Some("cluster-wide".into());
            // Quicker than the chart's production timers; nothing about scope or rights.
            command.controller.inventory_interval = 1;
            command.controller.task_poll_interval = 100;
            *command
        }
        _ => panic!("the chart's Deployment does not run `pve-operator run`: {argv:?}"),
    }
}

/// The label that ties a ProxmoxIdentity (cluster-scoped) to the test that made it; the
/// controllers these tests start on the shared control plane serve only their own.
const IDENTITY_LABEL: &str = crate::tenancy::TEST_LABEL;

/// Creates (or replaces) the Secret `ns/name` with `config` (a `proxmox:` document) under
/// `config.yaml`.
async fn put_secret(admin: &Client, ns: &str, name: &str, config: &str) {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name },
        "stringData": { "config.yaml": config },
    });
    secrets
        .patch(
            name,
            &PatchParams::apply("e2e-deploy").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("Secret applies");
}

/// Creates the ProxmoxIdentity `name` on the Secret `secret` (of the controller's namespace),
/// allowing the namespaces `allowed`, labelled with `IDENTITY_LABEL=label`.
async fn create_identity(admin: &Client, name: &str, secret: &str, allowed: &[&str], label: &str) {
    let identities: Api<ProxmoxIdentity> = Api::all(admin.clone());
    let identity = json!({
        "apiVersion": "pve-operator.dev/v1alpha1", "kind": "ProxmoxIdentity",
        "metadata": { "name": name, "labels": { IDENTITY_LABEL: label } },
        "spec": {
            "secretRef": { "name": secret },
            "allowedNamespaces": { "list": allowed },
        },
    });
    identities
        .patch(
            name,
            &PatchParams::apply("e2e-deploy").force(),
            &Patch::Apply(&identity),
        )
        .await
        .expect("ProxmoxIdentity applies");
}

/// The `type_` condition of a ProxmoxIdentity once it has one with `status`.
async fn identity_condition(admin: &Client, name: &str, type_: &str, status: &str) -> Condition {
    let identities: Api<ProxmoxIdentity> = Api::all(admin.clone());
    let found = |i: Option<&ProxmoxIdentity>| {
        i.and_then(|i| i.status.as_ref())
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .is_some_and(|c| c.status == status)
    };
    let identity = within(
        &format!("ProxmoxIdentity {name} to report {type_}={status}"),
        await_condition(identities, name, found),
    )
    .await
    .expect("watch works")
    .expect("the ProxmoxIdentity exists");
    identity
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == type_))
        .expect("the condition")
}

/// The `type_` condition of a ProxmoxCluster once it has one with `status`.
async fn cluster_condition(
    clusters: &Api<ProxmoxCluster>,
    name: &str,
    type_: &str,
    status: &str,
) -> Condition {
    let found = |c: Option<&ProxmoxCluster>| {
        c.and_then(|c| c.status.as_ref())
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .is_some_and(|c| c.status == status)
    };
    let cluster = within(
        &format!("ProxmoxCluster {name} to report {type_}={status}"),
        await_condition(clusters.clone(), name, found),
    )
    .await
    .expect("watch works")
    .expect("the ProxmoxCluster exists");
    cluster
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == type_))
        .expect("the condition")
}

/// Whether a call was refused by the API server's authorizer.
fn forbidden<T>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

/// List (and watch) parameters that select one object by name, as the controller's watch of an
/// identity's Secret does (RBAC matches the name against `resourceNames`).
fn by_name(name: &str) -> ListParams {
    ListParams::default().fields(&format!("metadata.name={name}"))
}

fn watch_by_name(name: &str) -> WatchParams {
    WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(1)
}

/// Cluster-wide, as the chart installs it by default, with `identitySecrets={pve-admin}`: the
/// ServiceAccount can list and watch that one Secret of the release's namespace, by name, and no
/// other Secret anywhere. A ProxmoxIdentity on it serves a tenant's ProxmoxCluster end to end;
/// one on an unlisted Secret says so to the admin and nothing of it to the tenant; a broken
/// password is seen through the per-name watch; the default connection serves only the release's
/// namespace. Its own control plane: a cluster-wide controller must not touch the other tests'
/// objects.
#[tokio::test]
async fn cluster_wide_the_charts_service_account_reads_only_the_identity_secrets_it_lists() {
    const LISTED: &str = "pve-admin";
    const UNLISTED: &str = "pve-other";
    init_logging();
    let env = testenv::TestEnv::start().await.expect("control plane");
    let admin = env.client().expect("client");
    install_crds(&admin).await;
    let release = env
        .create_namespace(&admin, "release")
        .await
        .expect("namespace");
    let team = env
        .create_namespace(&admin, "team")
        .await
        .expect("namespace");
    let listed = format!("identitySecrets={{{LISTED}}}");
    let docs = documents(&helm_template(&release, &[&listed]));
    let mut applied = Vec::new();
    for doc in &docs {
        if [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
        .contains(&doc["kind"].as_str().unwrap_or(""))
        {
            apply_object(&admin, doc).await;
            applied.push(kind_and_name(doc));
        }
    }
    applied.sort();
    assert_eq!(
        applied,
        [
            "ClusterRole/pve-operator",
            "ClusterRole/pve-operator-identities",
            "ClusterRoleBinding/pve-operator",
            "ClusterRoleBinding/pve-operator-identities",
            "Role/pve-operator-identity-secrets",
            "Role/pve-operator-leader-election",
            "RoleBinding/pve-operator-identity-secrets",
            "RoleBinding/pve-operator-leader-election",
            "ServiceAccount/pve-operator",
        ],
        "the chart's default RBAC with one identity Secret"
    );
    let sa = find(&docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let client = service_account_client(&admin, env.config(), &release, &sa).await;

    // Secrets to judge by: the listed one, another one beside it, one of the same name in a
    // tenant's namespace.
    let proxmox = Proxmox::start().await;
    let config = std::fs::read_to_string(&proxmox.config).expect("config");
    put_secret(&admin, &release, LISTED, &config).await;
    put_secret(&admin, &release, UNLISTED, &config).await;
    put_secret(&admin, &team, LISTED, &config).await;

    // The chart's rights, as the API server judges them.
    let in_release: Api<Secret> = Api::namespaced(client.clone(), &release);
    let in_team: Api<Secret> = Api::namespaced(client.clone(), &team);
    let everywhere: Api<Secret> = Api::all(client.clone());
    until("the listed Secret to be listable by name", || async {
        in_release.list(&by_name(LISTED)).await.is_ok()
    })
    .await;
    let seen = in_release.list(&by_name(LISTED)).await.expect("listed");
    assert_eq!(
        seen.items.iter().map(|s| s.name_any()).collect::<Vec<_>>(),
        [LISTED]
    );
    assert!(
        in_release.watch(&watch_by_name(LISTED), "0").await.is_ok(),
        "the listed Secret can be watched by name"
    );
    let refusals: Vec<(&str, bool)> = vec![
        (
            "get of the listed Secret (the controller only lists and watches it)",
            forbidden(in_release.get(LISTED).await),
        ),
        (
            "get of another Secret of the release's namespace",
            forbidden(in_release.get(UNLISTED).await),
        ),
        (
            "list of the release's namespace",
            forbidden(in_release.list(&ListParams::default()).await),
        ),
        (
            "list of another Secret by name",
            forbidden(in_release.list(&by_name(UNLISTED)).await),
        ),
        (
            "watch of the release's namespace",
            forbidden(
                in_release
                    .watch(&WatchParams::default().timeout(1), "0")
                    .await,
            ),
        ),
        (
            "watch of another Secret by name",
            forbidden(in_release.watch(&watch_by_name(UNLISTED), "0").await),
        ),
        (
            "get of the same name in a tenant's namespace",
            forbidden(in_team.get(LISTED).await),
        ),
        (
            "list of the same name in a tenant's namespace",
            forbidden(in_team.list(&by_name(LISTED)).await),
        ),
        (
            "list of a tenant's namespace",
            forbidden(in_team.list(&ListParams::default()).await),
        ),
        (
            "list in every namespace",
            forbidden(everywhere.list(&ListParams::default()).await),
        ),
        (
            "list of the name in every namespace",
            forbidden(everywhere.list(&by_name(LISTED)).await),
        ),
    ];
    let granted: Vec<&str> = refusals
        .iter()
        .filter(|(_, refused)| !refused)
        .map(|(what, _)| *what)
        .collect();
    assert!(granted.is_empty(), "the API server allowed: {granted:?}");

    // The controller, with the Deployment's own arguments, as the ServiceAccount.
    let command = chart_run_command(&docs, &release, &proxmox.config);
    assert_eq!(
        command.controller.identity_namespace.as_deref(),
        Some(release.as_str()),
        "the identities' Secrets are read in the chart's own namespace"
    );
    assert_eq!(command.controller.namespace, None, "cluster-wide");
    assert!(
        command.controller.default_allowed_namespaces.is_empty(),
        "the default connection keeps the binary's default (the controller's own namespace)"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let instance = Instance::launch(client, command, listener);

    // An identity on the listed Secret, for the tenant: its cluster gets a VM.
    create_identity(&admin, "tenants", LISTED, &[&team], "cluster-wide").await;
    identity_condition(&admin, "tenants", "Ready", "True").await;
    create_cluster_in(&admin, &team, "pve", "tenants", json!({})).await;
    let team_clusters: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &team);
    cluster_condition(&team_clusters, "pve", "Ready", "True").await;
    let team_requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &team);
    apply_request_on(&team_requests, "on-pve", Some("pve")).await;
    wait_ready(&team_requests, "on-pve").await;
    assert_eq!(proxmox.vm_count().await, 1);

    // An identity on a Secret the chart does not list: the admin is told which Secret and what
    // to change; the tenant learns nothing about it.
    create_identity(&admin, "stray", UNLISTED, &[&team], "cluster-wide").await;
    let unreadable = identity_condition(&admin, "stray", "SecretValid", "False").await;
    assert_eq!(unreadable.reason, "SecretUnreadable", "{unreadable:?}");
    for needle in [UNLISTED, release.as_str(), "identitySecrets"] {
        assert!(
            unreadable.message.contains(needle),
            "{needle} not in {:?}",
            unreadable.message
        );
    }
    let ready = identity_condition(&admin, "stray", "Ready", "False").await;
    assert_eq!(ready.reason, "SecretUnreadable");
    create_cluster_in(&admin, &team, "stray", "stray", json!({})).await;
    let not_ready = cluster_condition(&team_clusters, "stray", "Ready", "False").await;
    assert_eq!(not_ready.reason, "IdentityNotReady", "{not_ready:?}");
    apply_request_on(&team_requests, "on-stray", Some("stray")).await;
    let refused = request_refused(&team_requests, "on-stray", "IdentityNotReady").await;
    for tenant_view in [&not_ready.message, &refused] {
        for secret in [UNLISTED, release.as_str(), "Secret"] {
            assert!(
                !tenant_view.contains(secret),
                "the tenant is told of the identity's Secret ({secret}): {tenant_view:?}"
            );
        }
    }
    assert_eq!(
        proxmox.vm_count().await,
        1,
        "no VM through the stray identity"
    );

    // The default connection serves the release's namespace only.
    apply_request(&team_requests, "no-cluster").await;
    let refused = request_refused(&team_requests, "no-cluster", "NamespaceNotAllowed").await;
    for needle in [team.as_str(), "proxmox.allowedNamespaces"] {
        assert!(refused.contains(needle), "{needle} not in {refused:?}");
    }
    let release_requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &release);
    apply_request(&release_requests, "default-vm").await;
    wait_ready(&release_requests, "default-vm").await;
    assert_eq!(proxmox.vm_count().await, 2);
    delete_and_wait_gone(&release_requests, "default-vm").await;
    delete_and_wait_gone(&team_requests, "on-pve").await;
    assert_eq!(proxmox.vm_count().await, 0, "both VMs are destroyed");

    // The watch of the listed Secret, by name: a broken password is noticed at once (the
    // identity's periodic recheck is 5 minutes away, beyond the wait's limit).
    let broken = config.replace(proxmox.sim.root_password(), "not-the-password");
    assert_ne!(broken, config);
    put_secret(&admin, &release, LISTED, &broken).await;
    let refused = identity_condition(&admin, "tenants", "CredentialsValid", "False").await;
    assert_eq!(refused.reason, "Unauthorized", "{refused:?}");
    assert!(
        !refused.message.contains("not-the-password"),
        "no password in status: {:?}",
        refused.message
    );

    instance.stop().await.expect("a clean stop");
    proxmox.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Minimal RBAC: every verb of every rule is needed by a call the controller makes.

/// The call that needs `verb` on the rule's resource, made as the controller makes it.
/// Returns the API server's refusal (403) as `Some(false)`, anything else as `Some(true)`, and
/// `None` when the call could not be made yet (an Event to patch could not be created while an
/// RBAC change is still on its way to the authorizer).
///
/// The cluster-scoped objects are the test's own: the identity `<ns>-rbac-probe`, the namespace
/// `ns`; the identities' Secret is `rbac-probe`.
async fn call(client: &Client, ns: &str, resource: &str, verb: &str) -> Option<bool> {
    let requests: Api<MachineRequest> = Api::namespaced(client.clone(), ns);
    let clusters: Api<ProxmoxCluster> = Api::namespaced(client.clone(), ns);
    let identities: Api<ProxmoxIdentity> = Api::all(client.clone());
    let identity = format!("{ns}-rbac-probe");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let status_patch = |kind: &str| json!({ "apiVersion": "pve-operator.dev/v1alpha1", "kind": kind, "status": { "observedGeneration": 1 } });
    let apply = PatchParams::apply("pve-operator").force();
    let result: Result<(), kube::Error> = match (resource, verb) {
        ("machinerequests", "list") => requests.list(&ListParams::default()).await.map(drop),
        ("machinerequests", "watch") => requests
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        // The finalizer helper patches metadata.finalizers (a JSON patch; the verb is `patch`).
        ("machinerequests", "patch") => requests
            .patch(
                "rbac-probe",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "probe": verb } } })),
            )
            .await
            .map(drop),
        ("machinerequests/status", "patch") => requests
            .patch_status(
                "rbac-probe",
                &apply,
                &Patch::Apply(status_patch("MachineRequest")),
            )
            .await
            .map(drop),
        ("proxmoxclusters", "get") => clusters.get_opt("rbac-probe").await.map(drop),
        ("proxmoxclusters", "list") => clusters.list(&ListParams::default()).await.map(drop),
        ("proxmoxclusters", "watch") => clusters
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        ("proxmoxclusters/status", "patch") => clusters
            .patch_status(
                "rbac-probe",
                &apply,
                &Patch::Apply(status_patch("ProxmoxCluster")),
            )
            .await
            .map(drop),
        // The identities' reflector and controller (a list and a watch each), and a direct
        // read when the cache has not seen a new identity yet.
        ("proxmoxidentities", "get") => identities.get_opt(&identity).await.map(drop),
        ("proxmoxidentities", "list") => identities.list(&ListParams::default()).await.map(drop),
        ("proxmoxidentities", "watch") => identities
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        ("proxmoxidentities/status", "patch") => identities
            .patch_status(
                &identity,
                &apply,
                &Patch::Apply(status_patch("ProxmoxIdentity")),
            )
            .await
            .map(drop),
        // Namespaces' labels: a metadata-only reflector, and a metadata read on a cache miss.
        ("namespaces", "get") => namespaces.get_metadata_opt(ns).await.map(drop),
        ("namespaces", "list") => namespaces
            .list_metadata(&ListParams::default())
            .await
            .map(drop),
        ("namespaces", "watch") => namespaces
            .watch_metadata(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        // The watch of one identity Secret: a list and a watch, by name.
        ("secrets", "list") => secrets.list(&by_name("rbac-probe")).await.map(drop),
        ("secrets", "watch") => secrets
            .watch(&watch_by_name("rbac-probe"), "0")
            .await
            .map(drop),
        ("events", "create") | ("events", "patch") => {
            // kube's Recorder: the first publication creates, a repeat patches the series.
            let recorder = kube::runtime::events::Recorder::new(
                client.clone(),
                kube::runtime::events::Reporter {
                    controller: "pve-operator".into(),
                    instance: None,
                },
            );
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("pve-operator.dev/v1alpha1".into()),
                kind: Some("MachineRequest".into()),
                name: Some("rbac-probe".into()),
                namespace: Some(ns.into()),
                ..Default::default()
            };
            let event = kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Normal,
                reason: "Probe".into(),
                note: Some(verb.into()),
                action: "Probe".into(),
                secondary: None,
            };
            let first = recorder.publish(&event, &reference).await;
            match (verb, first) {
                ("create", first) => first,
                (_, Err(_)) => return None,
                (_, Ok(())) => recorder.publish(&event, &reference).await,
            }
        }
        ("leases", "get") => leases.get_opt("rbac-probe").await.map(drop),
        ("leases", "create") => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": { "generateName": "rbac-probe-" },
                "spec": { "holderIdentity": "probe" }
            }))
            .expect("lease");
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(drop)
        }
        ("leases", "update") => {
            // The elector's renewal: replace with the resourceVersion read (read as admin here,
            // so that only `update` is what the probe needs).
            let admin_leases: Api<Lease> = Api::namespaced(
                testenv::TestEnv::shared()
                    .await
                    .expect("env")
                    .client()
                    .expect("client"),
                ns,
            );
            let current = admin_leases.get("rbac-probe").await.expect("probe lease");
            leases
                .replace("rbac-probe", &PostParams::default(), &current)
                .await
                .map(drop)
        }
        other => {
            panic!("no probe call for {other:?}: the chart grants a verb this test does not know")
        }
    };
    Some(!matches!(result, Err(kube::Error::Api(status)) if status.code == 403))
}

#[tokio::test]
async fn removing_any_verb_of_any_rule_of_the_charts_rbac_breaks_a_call_the_controller_makes() {
    init_logging();
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let admin = env.client().expect("client");
    install_crds(&admin).await;
    let ns = env
        .create_namespace(&admin, "chart-rbac")
        .await
        .expect("namespace");
    let rbac = chart_rbac(&ns, "rbac-probe");
    for doc in &rbac {
        apply_object(&admin, doc).await;
    }
    let sa = find(&rbac, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let client = service_account_client(&admin, env.config(), &ns, &sa).await;

    // The objects the calls work on.
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &ns);
    apply_request(&requests, "rbac-probe").await;
    create_identity(
        &admin,
        &format!("{ns}-rbac-probe"),
        "rbac-probe",
        &[&ns],
        &ns,
    )
    .await;
    create_cluster_in(
        &admin,
        &ns,
        "rbac-probe",
        &format!("{ns}-rbac-probe"),
        json!({}),
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let lease: Lease =
        serde_json::from_value(json!({ "metadata": { "name": "rbac-probe" }, "spec": {} }))
            .expect("lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("lease created");

    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for role_doc in find(&rbac, "Role")
        .into_iter()
        .chain(find(&rbac, "ClusterRole"))
    {
        let kind = role_doc["kind"].as_str().expect("kind").to_string();
        let name = role_doc["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let rules = RoleRules::of(&admin, &kind, &ns);
        let full: Vec<PolicyRule> =
            serde_json::from_value(role_doc["rules"].clone()).expect("rules");
        for (index, rule) in full.iter().enumerate() {
            let resources = rule.resources.clone().unwrap_or_default();
            for verb in &rule.verbs {
                let mut reduced: Vec<PolicyRule> = full.clone();
                reduced[index].verbs.retain(|v| v != verb);
                if reduced[index].verbs.is_empty() {
                    reduced.remove(index);
                }
                for resource in &resources {
                    // With the chart's rules the call works (RBAC changes reach the authorizer
                    // through a watch: wait for them)...
                    rules.set(&name, full.clone()).await;
                    until(
                        &format!("{resource} {verb} to be allowed with the chart's rules"),
                        || async { call(&client, &ns, resource, verb).await == Some(true) },
                    )
                    .await;
                    // ...and without this one verb it is refused.
                    rules.set(&name, reduced.clone()).await;
                    until(
                        &format!(
                            "{resource} {verb} to be refused without that verb ({kind} {name})"
                        ),
                        || async { call(&client, &ns, resource, verb).await == Some(false) },
                    )
                    .await;
                    *checked.entry(format!("{kind}/{name}")).or_default() += 1;
                }
            }
        }
        rules.set(&name, full).await;
    }
    let prefix = sa.as_str();
    assert_eq!(
        checked,
        BTreeMap::from([
            // machinerequests 3, /status 1, proxmoxclusters 3, /status 1, events 2.
            (format!("Role/{prefix}"), 10),
            // secrets: list and watch, by name.
            (format!("Role/{prefix}-identity-secrets"), 2),
            // leases: get, create, update.
            (format!("Role/{prefix}-leader-election"), 3),
            // proxmoxidentities 3, /status 1, namespaces 3.
            (format!("ClusterRole/{prefix}-identities"), 7),
        ]),
        "every verb of the chart's rules was checked"
    );
}

/// Replaces the rules of the chart's Roles (in the test's namespace) or ClusterRoles.
enum RoleRules {
    Role(Api<Role>),
    ClusterRole(Api<ClusterRole>),
}

impl RoleRules {
    fn of(admin: &Client, kind: &str, ns: &str) -> RoleRules {
        match kind {
            "Role" => RoleRules::Role(Api::namespaced(admin.clone(), ns)),
            "ClusterRole" => RoleRules::ClusterRole(Api::all(admin.clone())),
            other => panic!("not a role kind: {other}"),
        }
    }

    async fn set(&self, name: &str, rules: Vec<PolicyRule>) {
        match self {
            RoleRules::Role(api) => {
                let mut role = api.get(name).await.expect("role");
                role.rules = Some(rules);
                api.replace(name, &PostParams::default(), &role)
                    .await
                    .expect("role updated");
            }
            RoleRules::ClusterRole(api) => {
                let mut role = api.get(name).await.expect("cluster role");
                role.rules = Some(rules);
                api.replace(name, &PostParams::default(), &role)
                    .await
                    .expect("cluster role updated");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Leader election.

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_within_the_lease_time_without_duplicates()
 {
    init_logging();
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let admin = env.client().expect("client");
    install_crds(&admin).await;
    let ns = env
        .create_namespace(&admin, "leader")
        .await
        .expect("namespace");
    let proxmox = Proxmox::start().await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &ns);
    let lease_duration = 4;
    let options = |identity| InstanceOptions {
        ns: &ns,
        config: &proxmox.config,
        leader_elect: true,
        identity,
        lease_duration,
    };

    let a = Instance::start(env.client().expect("client"), options("instance-a")).await;
    until("instance-a to lead", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-a")
    })
    .await;
    let b = Instance::start(env.client().expect("client"), options("instance-b")).await;
    until("instance-b to stand by (ready as a standby)", || async {
        let (code, body) = b.get("/readyz").await;
        code == 200 && body.contains("standby")
    })
    .await;

    apply_request(&requests, "first").await;
    wait_ready(&requests, "first").await;
    let count = |m: Metrics| {
        m.sum(
            "pve_operator_reconciles_total",
            &[("controller", "machinerequest")],
        )
    };
    assert!(count(a.metrics().await) > 0.0, "the leader reconciled");
    assert_eq!(
        count(b.metrics().await),
        0.0,
        "the standby reconciled nothing"
    );
    assert_eq!(lease_holder(&leases).await.as_deref(), Some("instance-a"));

    // A graceful stop releases the Lease: the standby takes over at its next attempt.
    let stopped = Instant::now();
    a.stop().await.expect("a clean stop");
    until("instance-b to lead after instance-a stopped", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-b")
    })
    .await;
    let handover = stopped.elapsed();
    assert!(
        handover < Duration::from_secs(lease_duration),
        "a released Lease is taken over within the lease time, took {handover:?}"
    );
    apply_request(&requests, "second").await;
    wait_ready(&requests, "second").await;
    assert!(count(b.metrics().await) > 0.0, "the new leader reconciles");

    // A crash releases nothing: a new standby takes over once the Lease expires.
    let c = Instance::start(env.client().expect("client"), options("instance-c")).await;
    until("instance-c to stand by", || async {
        c.get("/readyz").await.1.contains("standby")
    })
    .await;
    let crashed = Instant::now();
    b.crash().await;
    until("instance-c to lead after instance-b crashed", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-c")
    })
    .await;
    let takeover = crashed.elapsed();
    // The lease time, counted from when the standby first sees the silent leader's last record
    // (up to one retry interval, 1 s, after the crash), then up to one retry interval until its
    // next attempt, plus 1 s for a loaded machine.
    assert!(
        takeover < Duration::from_secs(lease_duration + 3),
        "an expired Lease is taken over within the lease time, took {takeover:?}"
    );
    assert!(
        takeover >= Duration::from_secs(lease_duration) - Duration::from_secs(1),
        "a Lease held by a silent leader is not taken before it expires (took {takeover:?})"
    );
    apply_request(&requests, "third").await;
    wait_ready(&requests, "third").await;

    // Nothing duplicated: one VM per request, distinct VMIDs.
    let mut vmids: Vec<u32> = Vec::new();
    for name in ["first", "second", "third"] {
        let request = requests.get(name).await.expect("request");
        vmids.push(request.status.and_then(|s| s.vmid).expect("vmid"));
    }
    vmids.sort_unstable();
    vmids.dedup();
    assert_eq!(vmids.len(), 3, "distinct VMs");
    let vms = proxmox.vms().await;
    assert_eq!(vms.len(), 3, "exactly one VM per request: {vms:?}");

    c.stop().await.expect("a clean stop");
    proxmox.sim.shutdown().await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_its_controllers_and_exits_with_an_error() {
    init_logging();
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let admin = env.client().expect("client");
    install_crds(&admin).await;
    let ns = env
        .create_namespace(&admin, "lease-lost")
        .await
        .expect("namespace");
    let proxmox = Proxmox::start().await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let mut instance = Instance::start(
        env.client().expect("client"),
        InstanceOptions {
            ns: &ns,
            config: &proxmox.config,
            leader_elect: true,
            identity: "instance-a",
            lease_duration: 4,
        },
    )
    .await;
    until("instance-a to lead", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-a")
    })
    .await;
    // Another writer takes the Lease (as a replica would after a network partition).
    let mut lease = leases.get("pve-operator-leader").await.expect("lease");
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        ));
    }
    leases
        .replace("pve-operator-leader", &PostParams::default(), &lease)
        .await
        .expect("lease taken");
    let task = instance.task.take().expect("running");
    let result = within("the former leader to stop", task)
        .await
        .expect("no panic");
    let error = result.expect_err("losing the Lease ends the run with an error");
    assert!(
        error.to_string().contains("leadership lost"),
        "unexpected error: {error:#}"
    );
    assert_eq!(
        lease_holder(&leases).await.as_deref(),
        Some("intruder"),
        "a leader that lost the Lease does not release (overwrite) the new holder's Lease"
    );
    proxmox.sim.shutdown().await;
}

#[tokio::test]
async fn helm_install_as_the_readme_says_creates_the_release_and_uninstall_removes_it() {
    use k8s_openapi::api::apps::v1::Deployment;
    init_logging();
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    let ns = env
        .create_namespace(&client, "helm-install")
        .await
        .expect("namespace");
    let kubeconfig = env.kubeconfig_path().to_string_lossy().into_owned();
    let watch = format!("watchNamespace={ns}");
    // The README's command (the Secret is created beforehand; here a namespace scope keeps the
    // release out of other tests' way).
    let helm = |args: &[&str]| {
        let mut all = vec![
            "--kubeconfig",
            kubeconfig.as_str(),
            "--namespace",
            ns.as_str(),
        ];
        all.extend_from_slice(args);
        run_tool("helm", &all)
    };
    helm(&[
        "install",
        "pve-operator",
        CHART,
        "--set",
        "image.repository=registry.example/pve-operator",
        "--set",
        "proxmox.existingSecret=pve-operator-proxmox",
        "--set",
        &watch,
    ]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = deployments
        .get("pve-operator")
        .await
        .expect("the release's Deployment exists");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/pve-operator:0.1.0")
    );
    assert_eq!(
        pod.volumes.unwrap_or_default()[0]
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref()),
        Some("pve-operator-proxmox")
    );
    let status = helm(&["status", "pve-operator", "-o", "json"]);
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    assert_eq!(status["info"]["status"], "deployed", "{}", status["info"]);

    helm(&["uninstall", "pve-operator", "--wait"]);
    assert!(
        deployments
            .get_opt("pve-operator")
            .await
            .expect("readable")
            .is_none(),
        "uninstall removes the Deployment"
    );
}
