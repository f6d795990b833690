//! Deployment and operations on the real kube-apiserver: the Helm chart and the kustomize base
//! (lint, server-side dry-run of everything they render, drift against `crds/` and the chart),
//! values the chart refuses, the chart's RBAC (sufficient for the full lifecycle as its
//! ServiceAccount, no rule or verb to spare, only the identities' Secrets it lists, by name),
//! the operations endpoints (`/metrics` as OpenMetrics, `/readyz` only after the caches synced)
//! and leader election between two controller instances.
//!
//! helm and kustomize come from `hack/helm/build.sh` (built once from their Go modules and
//! cached), or from `PVE_OPERATOR_DEPLOY_TOOLS`.
//!
//! By topic: [`helm`] (lint, refused values, the copies of `crds/`, install and uninstall),
//! [`render`] (every rendering's scope and Secrets, and a dry run of it), [`kustomize`] (the
//! base and its overlay), [`service_account`] (the controller as the chart's ServiceAccount,
//! with its endpoints), [`rbac`] (no verb to spare) and [`leader`] (leader election). This
//! module holds the helpers they share: running helm and kustomize, reading what they render,
//! the chart's RBAC applied, and requests; [`instance`] the controller instances and their
//! scrapes.

mod helm;
mod instance;
mod kustomize;
mod leader;
mod rbac;
mod render;
mod service_account;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchParams,
};
use kube::discovery::{self, Scope};
use kube::{Api, Client, Config};
use pve_operator_api::{HasConditions, MachineRequest, ProxmoxIdentity};
use serde_json::{Value, json};

use crate::support::{apply_forced, delete_and_wait_gone, machine_request, until, wait_for};

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

/// The name of the chart's ServiceAccount in `docs` (named as the release, like the
/// controller's Role and binding).
fn service_account_name(docs: &[Value]) -> String {
    find(docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string()
}

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

async fn wait_ready(requests: &Api<MachineRequest>, name: &str) -> MachineRequest {
    wait_for(requests, name, &format!("{name} to become Ready"), |r| {
        r.status.as_ref().is_some_and(|s| s.is_ready())
    })
    .await
}

async fn apply_request(requests: &Api<MachineRequest>, name: &str) {
    apply_request_on(requests, name, None).await
}

/// Applies a small ISO-booted MachineRequest, on the ProxmoxCluster `cluster` if given.
async fn apply_request_on(requests: &Api<MachineRequest>, name: &str, cluster: Option<&str>) {
    let mut spec = json!({
        "cpu": { "cores": 1 },
        "memory": { "sizeMiB": 512 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "iso": { "volume": "local:iso/debian-12.7.0-amd64-netinst.iso" } },
    });
    if let Some(cluster) = cluster {
        spec["clusterRef"] = json!({ "name": cluster });
    }
    let request = machine_request(name, spec);
    apply_forced(requests, "e2e-deploy", name, &request).await;
}

/// The label that ties a ProxmoxIdentity (cluster-scoped) to the test that made it; the
/// controllers these tests start on the shared control plane serve only their own.
const IDENTITY_LABEL: &str = crate::tenancy::TEST_LABEL;

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
    apply_forced(&identities, "e2e-deploy", name, &identity).await;
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
