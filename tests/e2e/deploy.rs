//! Deployment and operations on the real kube-apiserver: the Helm chart and the kustomize base
//! (lint, server-side dry-run of everything they render, drift against `crds/` and the chart),
//! values the chart refuses, the chart's RBAC (sufficient for the full lifecycle as its
//! ServiceAccount, no rule or verb to spare, Secrets only in the credentials namespaces), the operations endpoints (`/metrics` as OpenMetrics, `/readyz` only after the
//! caches synced) and leader election between two controller instances.
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
use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectList, Patch,
    PatchParams, PostParams, WatchParams,
};
use kube::discovery::{self, Scope};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, Config, ResourceExt};
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{OpsArgs, RunArgs, RunCommand, run_operator};
use pve_operator_api::{MachineRequest, ProxmoxCluster};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

use crate::crds::install_crds;
use crate::support::{init_logging, within};

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

/// `helm template` of the chart as release `pve-operator` in `namespace`, with `--set` values.
fn helm_template(namespace: &str, sets: &[&str]) -> String {
    let mut args = vec![
        "template",
        "pve-operator",
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        args.extend(["--set", set]);
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
        (
            &["credentialsNamespaces={Team_A}"],
            &["credentialsNamespaces/0"],
        ),
        // Rules across values, from the templates.
        (
            &["leaderElection.renewInterval=10"],
            &["renewInterval (10s)", "leaseDuration (15s)"],
        ),
        (
            &["credentialsNamespaces={*,team-a}"],
            &["credentialsNamespaces", "every namespace"],
        ),
        (
            &["watchNamespace=team-a", "credentialsNamespaces={team-b}"],
            &[
                "credentialsNamespaces",
                "team-a",
                "leave credentialsNamespaces empty",
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
    let watch = format!("watchNamespace={ns}");
    let mut teams = Vec::new();
    for prefix in ["team-a", "team-b"] {
        teams.push(
            env.create_namespace(&client, prefix)
                .await
                .expect("namespace"),
        );
    }
    let credentials_in_teams = format!("credentialsNamespaces={{{}}}", teams.join(","));
    let variants: Vec<(&str, Vec<&str>)> = vec![
        ("defaults", vec![]),
        ("credentials in two namespaces", vec![&credentials_in_teams]),
        ("credentials everywhere", vec!["credentialsNamespaces={*}"]),
        (
            "every option",
            vec![
                &watch,
                "replicaCount=2",
                "proxmox.config.url=https://pve.example:8006/api2/json",
                "proxmox.config.tokenID=omni@pve!omni-provider",
                "proxmox.config.tokenSecret=not-a-real-secret",
                "proxmox.config.insecureSkipVerify=true",
                "metrics.serviceMonitor.enabled=true",
                "networkPolicy.enabled=true",
            ],
        ),
        (
            "existing secret, no leader election",
            vec![
                "proxmox.existingSecret=my-proxmox",
                "leaderElection.enabled=false",
            ],
        ),
    ];
    for (what, sets) in &variants {
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
        dry_run_apply(&client, &docs).await;
    }

    // Secrets are granted where credentials live: by default the release's namespace...
    let secret_grants = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .filter(|d| {
                ["Role", "ClusterRole"].contains(&d["kind"].as_str().unwrap_or(""))
                    && d["rules"].to_string().contains("\"secrets\"")
            })
            .map(|d| {
                format!(
                    "{} {}",
                    d["kind"].as_str().unwrap_or(""),
                    d["metadata"]["namespace"].as_str().unwrap_or("(cluster)")
                )
            })
            .collect()
    };
    let args_of = |docs: &[Value]| -> Vec<String> {
        find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    };
    let defaults = documents(&helm_template(&ns, &[]));
    assert_eq!(secret_grants(&defaults), vec![format!("Role {ns}")]);
    assert!(args_of(&defaults).contains(&"--credentials-namespace=$(POD_NAMESPACE)".into()));
    // ...or the ones listed, or (asked for) all of them.
    let listed = documents(&helm_template(&ns, &[&credentials_in_teams]));
    assert_eq!(
        secret_grants(&listed),
        teams
            .iter()
            .map(|t| format!("Role {t}"))
            .collect::<Vec<_>>()
    );
    assert!(args_of(&listed).contains(&format!("--credentials-namespace={}", teams.join(","))));
    let everywhere = documents(&helm_template(&ns, &["credentialsNamespaces={*}"]));
    assert_eq!(secret_grants(&everywhere), vec!["ClusterRole (cluster)"]);
    assert!(
        !args_of(&everywhere)
            .iter()
            .any(|a| a.starts_with("--credentials-namespace"))
    );

    // The options show up where they should.
    let docs = documents(&helm_template(&ns, &variants[3].1));
    for kind in [
        "Role",
        "RoleBinding",
        "Secret",
        "ServiceMonitor",
        "NetworkPolicy",
    ] {
        assert!(!find(&docs, kind).is_empty(), "every option: no {kind}");
    }
    assert!(
        find(&docs, "ClusterRole").is_empty(),
        "a namespace scope needs no ClusterRole"
    );
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
    // Every argument is one the binary accepts.
    let mut argv = vec!["pve-operator"];
    argv.extend(args.iter().copied());
    let parsed = <pve_operator::cli::Cli as clap::Parser>::try_parse_from(&argv);
    assert!(
        parsed.is_ok(),
        "the binary rejects the chart's arguments: {:?}",
        parsed.err()
    );
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
}

// ---------------------------------------------------------------------------------------------
// A controller running as the chart's ServiceAccount.

/// The chart's RBAC and ServiceAccount for a controller watching `ns` (release in `ns` too).
fn chart_rbac(ns: &str) -> Vec<Value> {
    let watch = format!("watchNamespace={ns}");
    documents(&helm_template(ns, &[&watch]))
        .into_iter()
        .filter(|d| {
            ["ServiceAccount", "Role", "RoleBinding"].contains(&d["kind"].as_str().unwrap_or(""))
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
                kubeconfig: None,
                config: Some(options.config.to_path_buf()),
                namespace: Some(options.ns.to_string()),
                credentials_namespaces: vec![],
                concurrency: 16,
                inventory_interval: 1,
                task_poll_interval: 100,
                resync_interval: 0,
                shutdown_grace: 5,
                max_tasks_per_node: 8,
                task_deadline: 1800,
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
    let rbac = chart_rbac(&ns);
    let sa = find(&rbac, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    // Everything but the binding of the controller's Role: its caches cannot fill yet.
    let main_binding = rbac
        .iter()
        .find(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or("");
            d["kind"] == "RoleBinding"
                && !name.ends_with("-leader-election")
                && !name.ends_with("-credentials")
        })
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
    // The ProxmoxCluster controller works as the ServiceAccount too, and is counted.
    let clusters: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &ns);
    let cluster: ProxmoxCluster = serde_json::from_value(json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "ProxmoxCluster",
        "metadata": { "name": "no-credentials" },
        "spec": { "endpoint": "https://pve.example:8006/api2/json", "credentialsRef": { "name": "missing" } }
    }))
    .expect("ProxmoxCluster");
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("cluster created");
    within(
        "the ProxmoxCluster status to report the missing credentials",
        await_condition(
            clusters.clone(),
            "no-credentials",
            |c: Option<&ProxmoxCluster>| {
                c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "CredentialsValid" && c.status == "False")
                })
            },
        ),
    )
    .await
    .expect("watch works");
    // (Counted when the reconcile returns, just after its status write.)
    until("the ProxmoxCluster reconcile to be counted", || async {
        instance.metrics().await.sum(
            "pve_operator_reconciles_total",
            &[("controller", "proxmoxcluster")],
        ) >= 1.0
    })
    .await;
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
    assert_eq!(proxmox.vm_count().await, 0, "the VM is destroyed");

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
            command
        }
        _ => panic!("the chart's Deployment does not run `pve-operator run`: {argv:?}"),
    }
}

/// A ProxmoxCluster `name` in the namespace of `clusters`, on the simulator, with its
/// credentials Secret (the simulator's, in the source documents' format).
async fn create_proxmox_cluster(admin: &Client, ns: &str, name: &str, proxmox: &Proxmox) {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let text = std::fs::read_to_string(&proxmox.config).expect("config");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": format!("{name}-credentials") },
        "stringData": { "config.yaml": text }
    }))
    .expect("Secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret created");
    let clusters: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), ns);
    let cluster: ProxmoxCluster = serde_json::from_value(json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "ProxmoxCluster",
        "metadata": { "name": name },
        "spec": {
            "endpoint": proxmox.sim.url(),
            "credentialsRef": { "name": format!("{name}-credentials") }
        }
    }))
    .expect("ProxmoxCluster");
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("ProxmoxCluster created");
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

/// Cluster-wide, as the chart installs it by default: the ServiceAccount reads Secrets only in
/// the release's namespace. A ProxmoxCluster there works end to end; one in another namespace is
/// reported as not served (and the API server would refuse the read anyway). Its own control
/// plane: a cluster-wide controller must not touch the other tests' objects.
#[tokio::test]
async fn cluster_wide_the_charts_service_account_reads_credentials_only_in_the_credentials_namespaces()
 {
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
    let docs = documents(&helm_template(&release, &[]));
    assert!(
        find(&docs, "ClusterRole")[0]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| !r["resources"].to_string().contains("secrets")),
        "the ClusterRole grants no Secrets"
    );
    let mut applied = 0;
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
            applied += 1;
        }
    }
    // ServiceAccount, ClusterRole(+Binding), credentials Role(+Binding), Lease Role(+Binding).
    assert_eq!(
        applied,
        7,
        "{:?}",
        docs.iter().map(kind_and_name).collect::<Vec<_>>()
    );
    let sa = find(&docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let client = service_account_client(&admin, env.config(), &release, &sa).await;

    // The chart's rights, as the API server judges them.
    let in_release: Api<Secret> = Api::namespaced(client.clone(), &release);
    let in_team: Api<Secret> = Api::namespaced(client.clone(), &team);
    let everywhere: Api<Secret> = Api::all(client.clone());
    let forbidden = |r: Result<ObjectList<Secret>, kube::Error>| matches!(r, Err(kube::Error::Api(status)) if status.code == 403);
    until(
        "Secrets in the release's namespace to be listable",
        || async { in_release.list(&ListParams::default()).await.is_ok() },
    )
    .await;
    assert!(forbidden(in_team.list(&ListParams::default()).await));
    assert!(forbidden(everywhere.list(&ListParams::default()).await));

    let proxmox = Proxmox::start().await;
    let command = chart_run_command(&docs, &release, &proxmox.config);
    assert_eq!(
        command.controller.credentials_namespaces,
        vec![release.clone()],
        "by default the chart serves credentials of its own namespace"
    );
    assert_eq!(command.controller.namespace, None, "cluster-wide");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let instance = Instance::launch(client, command, listener);

    // Served: credentials from the release's namespace, a VM through them.
    create_proxmox_cluster(&admin, &release, "home", &proxmox).await;
    let home: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &release);
    cluster_condition(&home, "home", "Ready", "True").await;
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &release);
    apply_request_on(&requests, "on-home", Some("home")).await;
    wait_ready(&requests, "on-home").await;
    assert_eq!(proxmox.vm_count().await, 1);

    // Not served: said so, with what to change, on the cluster and on its requests.
    create_proxmox_cluster(&admin, &team, "away", &proxmox).await;
    let away: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &team);
    let condition = cluster_condition(&away, "away", "Ready", "False").await;
    assert_eq!(condition.reason, "CredentialsNamespaceNotServed");
    for needle in [team.as_str(), "credentialsNamespaces"] {
        assert!(
            condition.message.contains(needle),
            "{needle} not in {:?}",
            condition.message
        );
    }
    assert!(
        !condition.message.contains(&release),
        "another tenant's namespace is named: {:?}",
        condition.message
    );
    let team_requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &team);
    apply_request_on(&team_requests, "on-away", Some("away")).await;
    let not_served = |r: Option<&MachineRequest>| {
        r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "False"
                    && c.reason == "ClusterUnavailable"
                    && c.message.contains("credentialsNamespaces")
            })
        })
    };
    within(
        "the request on the unserved cluster to say why it waits",
        await_condition(team_requests.clone(), "on-away", not_served),
    )
    .await
    .expect("watch works");
    assert_eq!(
        proxmox.vm_count().await,
        1,
        "no VM for the unserved cluster"
    );

    delete_and_wait_gone(&requests, "on-home").await;

    // The Secret watch of the credentials namespace: a broken password is noticed at once (the
    // periodic recheck is 5 minutes away, beyond the wait's limit).
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &release);
    let broken = std::fs::read_to_string(&proxmox.config)
        .expect("config")
        .replace(proxmox.sim.root_password(), "not-the-password");
    secrets
        .patch(
            "home-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { "config.yaml": broken } })),
        )
        .await
        .expect("Secret patched");
    cluster_condition(&home, "home", "CredentialsValid", "False").await;

    instance.stop().await.expect("a clean stop");
    proxmox.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Minimal RBAC: every verb of every rule is needed by a call the controller makes.

/// The call that needs `verb` on the rule's resource, made as the controller makes it.
/// Returns the API server's refusal (403) as `false`, anything else as `true`.
async fn call(client: &Client, ns: &str, resource: &str, verb: &str) -> bool {
    let requests: Api<MachineRequest> = Api::namespaced(client.clone(), ns);
    let clusters: Api<ProxmoxCluster> = Api::namespaced(client.clone(), ns);
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
        ("secrets", "get") => secrets.get_opt("rbac-probe").await.map(drop),
        ("secrets", "list") => secrets.list(&ListParams::default()).await.map(drop),
        ("secrets", "watch") => secrets
            .watch(&WatchParams::default().timeout(1), "0")
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
                (_, Err(e)) => panic!("creating the first Event failed: {e}"),
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
    !matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
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
    let rbac = chart_rbac(&ns);
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
    let clusters: Api<ProxmoxCluster> = Api::namespaced(admin.clone(), &ns);
    let cluster: ProxmoxCluster = serde_json::from_value(json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "ProxmoxCluster",
        "metadata": { "name": "rbac-probe" },
        "spec": { "endpoint": "https://pve.example:8006/api2/json", "credentialsRef": { "name": "none" } }
    }))
    .expect("ProxmoxCluster");
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("cluster created");
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let lease: Lease =
        serde_json::from_value(json!({ "metadata": { "name": "rbac-probe" }, "spec": {} }))
            .expect("lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("lease created");

    let roles: Api<Role> = Api::namespaced(admin.clone(), &ns);
    let mut checked = 0;
    for role_doc in find(&rbac, "Role") {
        let role: Role = serde_json::from_value(role_doc.clone()).expect("Role");
        let name = role.name_any();
        let full = role.rules.clone().unwrap_or_default();
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
                    set_rules(&roles, &name, full.clone()).await;
                    until(
                        &format!("{resource} {verb} to be allowed with the chart's rules"),
                        || call(&client, &ns, resource, verb),
                    )
                    .await;
                    // ...and without this one verb it is refused.
                    set_rules(&roles, &name, reduced.clone()).await;
                    until(
                        &format!("{resource} {verb} to be refused without that verb"),
                        || async { !call(&client, &ns, resource, verb).await },
                    )
                    .await;
                    checked += 1;
                }
            }
        }
        set_rules(&roles, &name, full).await;
    }
    // 3 + 1 + 3 + 1 + 2 verbs on the controller's Role, 3 on the credentials Role (Secrets), 3 on the
    // leader-election Role.
    assert_eq!(checked, 16, "every verb of the chart's rules was checked");
}

async fn set_rules(roles: &Api<Role>, name: &str, rules: Vec<PolicyRule>) {
    let mut role = roles.get(name).await.expect("role");
    role.rules = Some(rules);
    roles
        .replace(name, &PostParams::default(), &role)
        .await
        .expect("role updated");
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
