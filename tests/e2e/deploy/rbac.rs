//! The chart's RBAC has no verb to spare: as the chart's ServiceAccount, each call the
//! controller makes works with the chart's rules and is refused once the one verb it needs is
//! removed, for every verb of every rule of every Role and ClusterRole.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Api, Client};
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity, ProxmoxImage};
use serde_json::json;

use super::{
    apply_object, apply_request, by_name, chart_rbac, create_identity, find,
    service_account_client, service_account_name, until, watch_by_name,
};
use crate::support::{init_logging, shared_namespace};
use crate::tenancy::create_cluster_in;

/// A status write of `kind` object `name` as the controller makes it (a forced server-side
/// apply of the status subresource as `pve-operator`).
async fn write_status<K>(api: &Api<K>, name: &str, kind: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let status = json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": kind,
        "status": { "observedGeneration": 1 },
    });
    let apply = PatchParams::apply("pve-operator").force();
    api.patch_status(name, &apply, &Patch::Apply(status))
        .await
        .map(drop)
}

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
    let images: Api<ProxmoxImage> = Api::namespaced(client.clone(), ns);
    let identities: Api<ProxmoxIdentity> = Api::all(client.clone());
    let identity = format!("{ns}-rbac-probe");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
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
        ("machinerequests/status", "patch") => {
            write_status(&requests, "rbac-probe", "MachineRequest").await
        }
        ("proxmoxclusters", "get") => clusters.get_opt("rbac-probe").await.map(drop),
        ("proxmoxclusters", "list") => clusters.list(&ListParams::default()).await.map(drop),
        ("proxmoxclusters", "watch") => clusters
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        ("proxmoxclusters/status", "patch") => {
            write_status(&clusters, "rbac-probe", "ProxmoxCluster").await
        }
        ("proxmoximages", "list") => images.list(&ListParams::default()).await.map(drop),
        ("proxmoximages", "watch") => images
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        // The image controller's finalizer (a JSON patch; the verb is `patch`).
        ("proxmoximages", "patch") => images
            .patch(
                "rbac-probe",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "probe": verb } } })),
            )
            .await
            .map(drop),
        ("proxmoximages/status", "patch") => {
            write_status(&images, "rbac-probe", "ProxmoxImage").await
        }
        // The identities' reflector and controller (a list and a watch each), and a direct
        // read when the cache has not seen a new identity yet.
        ("proxmoxidentities", "get") => identities.get_opt(&identity).await.map(drop),
        ("proxmoxidentities", "list") => identities.list(&ListParams::default()).await.map(drop),
        ("proxmoxidentities", "watch") => identities
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(drop),
        ("proxmoxidentities/status", "patch") => {
            write_status(&identities, &identity, "ProxmoxIdentity").await
        }
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
    let (env, admin, ns) = shared_namespace("chart-rbac").await;
    let rbac = chart_rbac(&ns, "rbac-probe");
    for doc in &rbac {
        apply_object(&admin, doc).await;
    }
    let sa = service_account_name(&rbac);
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
    let image: ProxmoxImage = serde_json::from_value(json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "ProxmoxImage",
        "metadata": { "name": "rbac-probe" },
        "spec": {
            "clusterRef": { "name": "rbac-probe" },
            "url": "https://images.example.com/probe.iso",
            "checksum": { "algorithm": "sha256", "value": "0".repeat(64) },
            "content": "iso",
            "storage": "local",
        },
    }))
    .expect("image");
    Api::<ProxmoxImage>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &image)
        .await
        .expect("image created");
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
            // machinerequests 3, /status 1, proxmoxclusters 3, /status 1, proxmoximages 3,
            // /status 1, events 2.
            (format!("Role/{prefix}"), 14),
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
