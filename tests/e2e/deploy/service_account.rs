//! The controller as the chart's ServiceAccount: unready until its caches sync, then the whole
//! lifecycle with its metrics (read as OpenMetrics, and by the Prometheus project's reference
//! parser), the identity and cluster controllers and Events; and, cluster-wide as the chart
//! installs it by default, reading only the identities' Secrets the chart lists, by name.

use std::path::Path;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, WatchParams};
use kube::{Api, Client, ResourceExt};
use pve_operator::cli::run::RunCommand;
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity};
use serde_json::{Value, json};

use super::instance::{Instance, InstanceOptions, Metrics, Proxmox, lease_holder};
use super::{
    apply_object, apply_request, apply_request_on, by_name, chart_rbac, create_identity,
    delete_and_wait_gone, documents, find, helm_template, kind_and_name, service_account_client,
    service_account_name, until, wait_ready, watch_by_name,
};
use crate::support::{
    WithConditions, apply_config_secret, init_logging, namespace_on, shared_namespace, wait_status,
};
use crate::tenancy::{create_cluster_in, request_refused};

#[tokio::test]
async fn as_the_charts_service_account_the_controller_is_unready_until_its_caches_sync_then_runs_the_lifecycle_with_metrics()
 {
    init_logging();
    let (env, admin, ns) = shared_namespace("chart-sa").await;
    let rbac = chart_rbac(&ns, "sa-identity");
    // (The ServiceAccount is named as the release, like the controller's Role and binding.)
    let sa = service_account_name(&rbac);
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
    apply_config_secret(&admin, &ns, "sa-identity", &config).await;
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

/// The `type_` condition of a ProxmoxIdentity once it has one with `status`.
async fn identity_condition(admin: &Client, name: &str, type_: &str, status: &str) -> Condition {
    let identities: Api<ProxmoxIdentity> = Api::all(admin.clone());
    wait_status(&identities, name, type_, status)
        .await
        .condition_now(type_)
        .cloned()
        .expect("the condition")
}

/// The `type_` condition of a ProxmoxCluster once it has one with `status`.
async fn cluster_condition(
    clusters: &Api<ProxmoxCluster>,
    name: &str,
    type_: &str,
    status: &str,
) -> Condition {
    wait_status(clusters, name, type_, status)
        .await
        .condition_now(type_)
        .cloned()
        .expect("the condition")
}

/// Whether a call was refused by the API server's authorizer.
fn forbidden<T>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
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
    let (admin, release) = namespace_on(&env, "release").await;
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
    let sa = service_account_name(&docs);
    let client = service_account_client(&admin, env.config(), &release, &sa).await;

    // Secrets to judge by: the listed one, another one beside it, one of the same name in a
    // tenant's namespace.
    let proxmox = Proxmox::start().await;
    let config = std::fs::read_to_string(&proxmox.config).expect("config");
    apply_config_secret(&admin, &release, LISTED, &config).await;
    apply_config_secret(&admin, &release, UNLISTED, &config).await;
    apply_config_secret(&admin, &team, LISTED, &config).await;

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
    apply_config_secret(&admin, &release, LISTED, &broken).await;
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
