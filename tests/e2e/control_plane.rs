//! Proof that the test control plane is a real Kubernetes API server: CRDs, OpenAPI validation,
//! watches and server-side apply behave as the server implements them, and the processes never
//! outlive the test.

use std::path::Path;
use std::process::{Command, Stdio};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PatchParams, PostParams,
};
use kube::runtime::wait::Condition as _;
use kube::runtime::{WatchStreamExt, conditions, watcher};
use kube::{Api, Client};
use serde_json::json;

use crate::support::{eventually, server_apply, within};

const GROUP: &str = "testenv.pve-operator.dev";

/// A small CRD with schema constraints the server must enforce.
fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{GROUP}") },
        "spec": {
            "group": GROUP,
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": { "type": "integer", "minimum": 1, "maximum": 10 },
                            "color": { "type": "string", "pattern": "^[a-z]+$" }
                        }
                    }}
                }}
            }]
        }
    }))
    .expect("the test CRD is valid JSON for the CRD type")
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1", "Widget"))
}

fn widget(name: &str, spec: serde_json::Value) -> DynamicObject {
    DynamicObject::new(name, &widget_resource()).data(json!({ "spec": spec }))
}

/// Installs the Widget CRD (idempotent across tests sharing the control plane) and waits until
/// the server reports it Established.
async fn install_widget_crd(client: &Client) {
    testenv::apply_crds(client, &[widget_crd()], "e2e-tests")
        .await
        .expect("the Widget CRD applies and becomes Established");
}

async fn setup(prefix: &str) -> (Client, String) {
    let env = testenv::TestEnv::shared()
        .await
        .expect("the shared control plane starts");
    let client = env.client().expect("admin client");
    let ns = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace is created");
    install_widget_crd(&client).await;
    (client, ns)
}

#[tokio::test]
async fn api_server_reports_the_pinned_kubernetes_release() {
    let env = testenv::TestEnv::shared()
        .await
        .expect("control plane starts");
    let client = env.client().expect("admin client");
    let version = client.apiserver_version().await.expect("/version answers");
    assert_eq!(
        version.git_version, "v1.35.4",
        "hack/envtest/versions.env pins v1.35.4"
    );
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "35")
    );
}

#[tokio::test]
async fn crd_is_applied_and_becomes_established() {
    let (client, _ns) = setup("crd-established").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let crd = crds
        .get(&format!("widgets.{GROUP}"))
        .await
        .expect("CRD exists");
    assert!(
        conditions::is_crd_established().matches_object(Some(&crd)),
        "the server set Established=True"
    );
}

#[tokio::test]
async fn object_violating_the_openapi_schema_is_rejected_with_the_servers_message() {
    let (client, ns) = setup("schema-rejects").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, &ns, &widget_resource());

    let accepted = widgets
        .create(
            &PostParams::default(),
            &widget("fine", json!({ "size": 3, "color": "red" })),
        )
        .await;
    assert!(accepted.is_ok(), "a valid object is accepted: {accepted:?}");

    let err = widgets
        .create(
            &PostParams::default(),
            &widget("too-big", json!({ "size": 11, "color": "Red!" })),
        )
        .await
        .expect_err("an object outside the schema is rejected");
    let kube::Error::Api(status) = err else {
        panic!("expected an API status error, got {err:?}");
    };
    assert_eq!(status.code, 422, "the server answers Unprocessable Entity");
    assert!(
        status.message.contains("spec.size")
            && status
                .message
                .contains("should be less than or equal to 10"),
        "the server's own message names the field and the bound: {}",
        status.message
    );
    assert!(
        status.message.contains("spec.color"),
        "every violated field is reported: {}",
        status.message
    );
}

#[tokio::test]
async fn watch_sees_a_create_and_a_delete() {
    let (client, ns) = setup("watch").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, &ns, &widget_resource());
    let mut events = watcher(widgets.clone(), watcher::Config::default())
        .touched_objects()
        .boxed();
    // The watcher is live once its initial (empty) list has been delivered; creating the object
    // after the first poll means the create arrives as a watch event.
    let mut seen = Vec::new();
    let stream = async {
        let created = widgets
            .create(
                &PostParams::default(),
                &widget("watched", json!({ "size": 1 })),
            )
            .await
            .expect("create");
        assert_eq!(created.metadata.name.as_deref(), Some("watched"));
        while let Some(obj) = events.try_next().await.expect("watch stream") {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let deleting = obj.metadata.deletion_timestamp.is_some();
            seen.push(name.clone());
            if name == "watched" && seen.len() == 1 {
                widgets
                    .delete("watched", &DeleteParams::default())
                    .await
                    .expect("delete");
            }
            if seen.len() >= 2 || deleting {
                break;
            }
        }
    };
    within("the watch to report the create and the delete", stream).await;
    assert_eq!(
        seen,
        ["watched", "watched"],
        "one event for the create, one for the delete"
    );
}

#[tokio::test]
async fn server_side_apply_with_a_conflicting_field_manager_is_refused() {
    let (client, ns) = setup("ssa-conflict").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, &ns, &widget_resource());
    let mut ours = widget("shared", json!({ "size": 2 }));
    ours.metadata.namespace = Some(ns.clone());
    server_apply(&widgets, &PatchParams::apply("manager-a"), "shared", &ours)
        .await
        .expect("the first manager applies");

    let theirs = widget("shared", json!({ "size": 5 }));
    let err = server_apply(
        &widgets,
        &PatchParams::apply("manager-b"),
        "shared",
        &theirs,
    )
    .await
    .expect_err("a second manager changing the same field without force is refused");
    let kube::Error::Api(status) = err else {
        panic!("expected an API status error, got {err:?}");
    };
    assert_eq!(status.code, 409, "Conflict: {}", status.message);
    assert!(
        status.message.contains("manager-a") && status.message.contains(".spec.size"),
        "the server names the owning manager and the field: {}",
        status.message
    );

    let forced = server_apply(
        &widgets,
        &PatchParams::apply("manager-b").force(),
        "shared",
        &theirs,
    )
    .await
    .expect("a forced apply takes ownership");
    assert_eq!(forced.data["spec"]["size"], 5);
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Runs the probe binary in `mode`, returns the pids and directory it reported, and the child.
fn run_probe(mode: &str) -> (std::process::Child, [u32; 2], String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testenv-probe"))
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the probe starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("probe output");
    let (pids, dir) = line
        .trim()
        .strip_prefix("pids=")
        .and_then(|rest| rest.split_once(" dir="))
        .unwrap_or_else(|| panic!("unexpected probe output: {line:?}"));
    let pids: Vec<u32> = pids.split(',').map(|p| p.parse().expect("pid")).collect();
    (child, [pids[0], pids[1]], dir.to_string())
}

async fn assert_nothing_survives(pids: [u32; 2], dir: &str) {
    eventually("etcd and kube-apiserver to be gone", || {
        !alive(pids[0]) && !alive(pids[1])
    })
    .await;
    eventually("the control plane's directory to be removed", || {
        !Path::new(dir).exists()
    })
    .await;
}

#[tokio::test]
async fn no_process_or_directory_survives_a_panicking_test_process() {
    let (mut child, pids, dir) = run_probe("panic");
    let status = child.wait().expect("probe exits");
    assert!(!status.success(), "the probe panicked");
    assert_nothing_survives(pids, &dir).await;
}

#[tokio::test]
async fn no_process_or_directory_survives_a_killed_test_process() {
    let (mut child, pids, dir) = run_probe("wait-for-kill");
    assert!(
        alive(pids[0]) && alive(pids[1]),
        "the control plane runs while the probe lives"
    );
    child.kill().expect("SIGKILL the probe");
    child.wait().expect("probe reaped");
    assert_nothing_survives(pids, &dir).await;
}

#[tokio::test]
async fn dropping_an_owned_control_plane_stops_it_and_removes_its_directory() {
    let env = testenv::TestEnv::start()
        .await
        .expect("own control plane starts");
    let pids = env.pids();
    let dir = env.dir().display().to_string();
    let client = env.client().expect("client");
    client.apiserver_version().await.expect("it serves");
    assert!(alive(pids[0]) && alive(pids[1]));
    drop(env);
    assert!(
        !alive(pids[0]) && !alive(pids[1]),
        "drop waits for both processes"
    );
    assert_nothing_survives(pids, &dir).await;
}
