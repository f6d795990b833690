//! Tenancy end to end (issue 12): ProxmoxIdentities bind credentials to their endpoint and say
//! which namespaces may use them for what; a tenant's ProxmoxCluster can only narrow that; a
//! tenant reaches nothing the admin did not grant. Real kube-apiserver, pve-sim, the controller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use pve_operator_api::{MachineRequest, ProxmoxCluster, ProxmoxIdentity};
use serde_json::{Value, json};

use crate::support::{
    Harness, WithConditions, apply_config_secret, apply_forced, machine_request, wait_for,
    wait_reason,
};

/// The label that ties an identity to the test (and the controller) that made it.
pub const TEST_LABEL: &str = "e2e.pve-operator.dev/test";

impl Harness {
    /// Creates (or replaces) the Secret `name` of the controller's identity namespace (the
    /// test's) with `config` under `config.yaml`.
    pub async fn apply_identity_secret(&self, name: &str, config: &str) {
        apply_config_secret(&self.client, &self.namespace, name, config).await;
    }

    /// Creates a ProxmoxIdentity named `<namespace>-<suffix>` (identities are cluster-scoped)
    /// with a Secret of the same name holding `config`, and the rest of its spec from `spec`
    /// (`allowedNamespaces`, `allowed`, `endpoint`). Returns the identity's name.
    pub async fn create_identity(&self, suffix: &str, config: &str, spec: Value) -> String {
        let name = format!("{}-{suffix}", self.namespace);
        self.apply_identity_secret(&name, config).await;
        let mut full = json!({ "secretRef": { "name": name } });
        if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
            full.extend(extra.clone());
        }
        let identity = json!({
            "apiVersion": "pve-operator.dev/v1alpha1", "kind": "ProxmoxIdentity",
            "metadata": { "name": name, "labels": { TEST_LABEL: self.namespace } },
            "spec": full,
        });
        let identities: Api<ProxmoxIdentity> = Api::all(self.client.clone());
        apply_forced(&identities, "e2e-tests", &name, &identity).await;
        name
    }

    /// Creates the ProxmoxCluster `name` in the test's namespace on `identity`, narrowed by
    /// `allowed`.
    pub async fn create_cluster(&self, name: &str, identity: &str, allowed: Value) {
        create_cluster_in(&self.client, &self.namespace, name, identity, allowed).await;
    }

    /// The simulator's root@pam connection in the `proxmox:` format.
    pub fn root_config(&self) -> String {
        self.root_config_with(self.sim.fingerprint(), self.sim.root_password())
    }

    /// Like [`Harness::root_config`], pinning `fingerprint` and with `password` (for a wrong
    /// pin or password).
    pub fn root_config_with(&self, fingerprint: &str, password: &str) -> String {
        format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{fingerprint}\"\n  username: root\n  realm: pam\n  password: \"{password}\"\n",
            self.sim.url(),
        )
    }
}

/// Creates the ProxmoxCluster `namespace/name` on `identity`, narrowed by `allowed`.
pub async fn create_cluster_in(
    client: &Client,
    namespace: &str,
    name: &str,
    identity: &str,
    allowed: Value,
) {
    let clusters: Api<ProxmoxCluster> = Api::namespaced(client.clone(), namespace);
    let cluster = json!({
        "apiVersion": "pve-operator.dev/v1alpha1", "kind": "ProxmoxCluster",
        "metadata": { "name": name },
        "spec": { "identityRef": { "name": identity }, "allowed": allowed },
    });
    apply_forced(&clusters, "e2e-tests", name, &cluster).await;
}

/// Waits until condition `type_` of the ProxmoxCluster has `reason`, and returns its message.
pub async fn cluster_condition(
    client: &Client,
    namespace: &str,
    name: &str,
    type_: &'static str,
    reason: &'static str,
) -> String {
    let clusters: Api<ProxmoxCluster> = Api::namespaced(client.clone(), namespace);
    wait_reason(&clusters, name, type_, reason)
        .await
        .message_of(type_)
}

/// Waits until the request's Ready condition is False with `reason`, and returns its message.
pub async fn request_refused(
    requests: &Api<MachineRequest>,
    name: &str,
    reason: &'static str,
) -> String {
    let what = format!("MachineRequest {name} Ready=False reason {reason}");
    let refused = |r: &MachineRequest| {
        r.condition_now("Ready")
            .is_some_and(|c| c.status == "False" && c.reason == reason)
    };
    wait_for(requests, name, &what, refused)
        .await
        .message_of("Ready")
}

/// A second namespace on the harness's control plane, labelled `labels`.
async fn other_namespace(h: &Harness, prefix: &str, labels: Value) -> String {
    let namespaces: Api<Namespace> = Api::all(h.client.clone());
    let name = format!("{}-{prefix}", h.namespace);
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

fn small_spec(cluster: Option<&str>) -> Value {
    let mut spec = json!({
        "memory": { "sizeMiB": 256 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 2 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "network": {} },
    });
    if let Some(cluster) = cluster {
        spec["clusterRef"] = json!({ "name": cluster });
    }
    spec
}

async fn apply_request(requests: &Api<MachineRequest>, name: &str, spec: Value) {
    apply_forced(requests, "e2e-tests", name, &machine_request(name, spec)).await;
}

/// How many VMs in the simulator carry `uid` in a tag or their description.
async fn vms_marked_with(h: &Harness, uid: &str) -> usize {
    let resources = h.pve.cluster_resources(None).await.expect("resources");
    resources
        .iter()
        .filter(|r| r.is_qemu() && r.tag_list().iter().any(|t| t.contains(uid)))
        .count()
}

/// A loopback TCP listener that counts the connections made to it (and never answers): where a
/// leaked credential would go.
struct Trap {
    url: String,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Trap {
    async fn start() -> Trap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("trap listens");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap {
            url: format!("https://127.0.0.1:{port}/api2/json"),
            connections,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_identity_serves_only_the_namespaces_it_allows_by_name_or_label() {
    let h = Harness::start_all_namespaces("tenancy-ns").await;
    let team_a = other_namespace(&h, "a", json!({})).await;
    let team_b = other_namespace(&h, "b", json!({ "tenant": "b" })).await;
    let team_c = other_namespace(&h, "c", json!({ "tenant": "c" })).await;
    let identity = h
        .create_identity(
            "shared",
            &h.root_config(),
            json!({ "allowedNamespaces": {
                "list": [team_a],
                "selector": { "matchLabels": { "tenant": "b" } },
            } }),
        )
        .await;
    for ns in [&team_a, &team_b, &team_c] {
        create_cluster_in(&h.client, ns, "pve", &identity, json!({})).await;
    }
    // Allowed by name and by label: a VM each.
    for ns in [&team_a, &team_b] {
        let requests: Api<MachineRequest> = Api::namespaced(h.client.clone(), ns);
        apply_request(&requests, "web", small_spec(Some("pve"))).await;
        h.wait_ready_in(&requests, "web").await;
    }
    // Not allowed: the cluster and the request say which rule refuses it, and no VM is made.
    let message = cluster_condition(
        &h.client,
        &team_c,
        "pve",
        "IdentityAllowed",
        "NamespaceNotAllowed",
    )
    .await;
    assert!(
        message.contains(&identity)
            && message.contains("spec.allowedNamespaces")
            && message.contains(&team_c),
        "{message}"
    );
    assert!(
        !message.contains(&team_a) && !message.contains(&team_b),
        "names no other tenant's namespace: {message}"
    );
    let requests_c: Api<MachineRequest> = Api::namespaced(h.client.clone(), &team_c);
    apply_request(&requests_c, "web", small_spec(Some("pve"))).await;
    let refused = request_refused(&requests_c, "web", "NamespaceNotAllowed").await;
    assert!(refused.contains("spec.allowedNamespaces"), "{refused}");
    let uid = requests_c
        .get("web")
        .await
        .expect("request")
        .metadata
        .uid
        .expect("uid");
    assert_eq!(
        vms_marked_with(&h, &uid).await,
        0,
        "no VM for a refused namespace"
    );
    // The default connection serves only the namespaces it is told (here: the test's own).
    apply_request(&requests_c, "no-cluster", small_spec(None)).await;
    let refused = request_refused(&requests_c, "no-cluster", "NamespaceNotAllowed").await;
    assert!(
        refused.contains("--default-allowed-namespaces") && refused.contains(&team_c),
        "{refused}"
    );
    // Taking the label away revokes access: the next pass refuses and leaves the VM alone.
    let namespaces: Api<Namespace> = Api::all(h.client.clone());
    namespaces
        .patch(
            &team_b,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "tenant": "gone" } } })),
        )
        .await
        .expect("label changed");
    let cluster_b = cluster_condition(
        &h.client,
        &team_b,
        "pve",
        "IdentityAllowed",
        "NamespaceNotAllowed",
    )
    .await;
    assert!(cluster_b.contains(&team_b), "{cluster_b}");
    let requests_b: Api<MachineRequest> = Api::namespaced(h.client.clone(), &team_b);
    let revoked = request_refused(&requests_b, "web", "NamespaceNotAllowed").await;
    assert!(revoked.contains(&team_b), "{revoked}");
    let vm_b = requests_b
        .get("web")
        .await
        .expect("request")
        .status
        .and_then(|s| s.vmid)
        .expect("vmid");
    assert!(
        h.pve.qemu_status("pve", vm_b).await.is_ok(),
        "a revoked namespace's VM is left alone, not deleted"
    );
    // Deleting: a request that was never given a VM is released at once; one that was removes
    // its own VM (and only that) before it goes.
    h.delete_and_wait_gone_in(&requests_c, "web").await;
    h.delete_and_wait_gone_in(&requests_b, "web").await;
    assert!(
        h.pve.qemu_status("pve", vm_b).await.is_err(),
        "its own VM went with it"
    );
    h.stop().await;
}

#[tokio::test]
async fn credentials_go_only_to_their_secrets_url_never_to_an_endpoint_a_tenant_or_an_identity_names()
 {
    let h = Harness::start_all_namespaces("tenancy-endpoint").await;
    let trap = Trap::start().await;
    let team = other_namespace(&h, "t", json!({})).await;
    // An identity whose stated endpoint differs from its Secret's url is refused as a whole.
    let mismatched = h
        .create_identity(
            "mismatch",
            &h.root_config(),
            json!({ "endpoint": trap.url, "allowedNamespaces": { "list": [team] } }),
        )
        .await;
    let identities: Api<ProxmoxIdentity> = Api::all(h.client.clone());
    let message = wait_reason(&identities, &mismatched, "SecretValid", "EndpointMismatch")
        .await
        .message_of("SecretValid");
    assert!(message.contains("spec.endpoint"), "{message}");
    assert!(
        !message.contains(h.sim.root_password()),
        "no secret: {message}"
    );
    create_cluster_in(&h.client, &team, "pve", &mismatched, json!({})).await;
    let requests: Api<MachineRequest> = Api::namespaced(h.client.clone(), &team);
    apply_request(&requests, "web", small_spec(Some("pve"))).await;
    let tenant_view = request_refused(&requests, "web", "IdentityNotReady").await;
    assert!(
        !tenant_view.contains("127.0.0.1"),
        "the tenant learns nothing of the identity's Secret: {tenant_view}"
    );

    // A tenant cannot name an endpoint, TLS settings or a Secret at all: the API server refuses
    // the old fields (strict field validation), and without it they are dropped.
    let clusters: Api<ProxmoxCluster> = Api::namespaced(h.client.clone(), &team);
    let hostile = json!({
        "apiVersion": "pve-operator.dev/v1alpha1", "kind": "ProxmoxCluster",
        "metadata": { "name": "hostile" },
        "spec": {
            "identityRef": { "name": mismatched },
            "endpoint": trap.url,
            "tls": { "insecureSkipVerify": true },
            "credentialsRef": { "name": "some-apps-db-password" },
        },
    });
    let strict = PatchParams::apply("e2e-tests").force().validation_strict();
    let error = clusters
        .patch("hostile", &strict, &Patch::Apply(&hostile))
        .await
        .expect_err("unknown fields are refused");
    let text = error.to_string();
    assert!(
        ["spec.endpoint", "spec.credentialsRef", "spec.tls"]
            .iter()
            .any(|field| text.contains(field))
            && text.contains("not declared in schema"),
        "{text}"
    );

    // An identity that allows the tenant, with the tenant's cluster trying every field: the
    // VM is made through the Secret's url only.
    let good = h
        .create_identity(
            "good",
            &h.root_config(),
            json!({ "allowedNamespaces": { "list": [team] } }),
        )
        .await;
    let mut hostile = hostile.clone();
    hostile["spec"]["identityRef"]["name"] = json!(good);
    let untyped: Api<DynamicObject> = Api::namespaced_with(
        h.client.clone(),
        &team,
        &ApiResource::erase::<ProxmoxCluster>(&()),
    );
    let created = untyped
        .create(
            &PostParams::default(),
            &serde_json::from_value(hostile).expect("object"),
        )
        .await
        .expect("created, the unknown fields pruned by the API server");
    assert!(
        created.data["spec"].get("endpoint").is_none()
            && created.data["spec"].get("credentialsRef").is_none(),
        "pruned: {:?}",
        created.data["spec"]
    );
    apply_request(&requests, "through-good", small_spec(Some("hostile"))).await;
    h.wait_ready_in(&requests, "through-good").await;
    assert_eq!(
        trap.connections(),
        0,
        "no connection, so no request and no Authorization header, ever reached the trap"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_tenant_uses_only_the_templates_storages_bridges_pools_and_nodes_its_identity_allows() {
    let h = Harness::start_with("tenancy-allow", |options| {
        options.config.nodes.push(pve_sim::config::NodeConfig {
            name: "pve2".into(),
            cpus: 16,
            memory: pve_sim::config::Size(64 << 30),
            bridges: vec!["vmbr0".into()],
            online: true,
        });
    })
    .await;
    let identity = h
        .create_identity(
            "narrow",
            &h.root_config(),
            json!({
                "allowedNamespaces": { "list": [h.namespace] },
                "allowed": {
                    "storages": ["local-lvm"],
                    "bridges": [{ "name": "vmbr0", "vlans": [{ "min": 100, "max": 199 }], "untagged": true }],
                    "templates": [{ "name": "debian-12-template" }],
                    "pools": [],
                    "nodes": ["pve"],
                    "vmidRange": { "min": 7000, "max": 7999 },
                },
            }),
        )
        .await;
    h.create_cluster("pve", &identity, json!({})).await;
    let requests = h.requests();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "other-storage",
            json!({ "disks": [{ "slot": "scsi0", "storage": "local", "sizeGiB": 2 }] }),
            "spec.disks[0].storage \"local\" is not allowed",
        ),
        (
            "other-vlan",
            json!({ "networks": [{ "name": "net0", "bridge": "vmbr0", "vlan": 200 }] }),
            "spec.networks[0].vlan 200 is not allowed",
        ),
        (
            "other-bridge",
            json!({ "networks": [{ "name": "net0", "bridge": "vmbr1" }] }),
            "spec.networks[0].bridge \"vmbr1\" is not allowed",
        ),
        (
            "a-pool",
            json!({ "pool": "anything" }),
            "spec.pool \"anything\" is not allowed",
        ),
        (
            "other-node",
            json!({ "placement": { "node": "pve2" } }),
            "spec.placement.node \"pve2\" is not allowed",
        ),
        (
            "other-template",
            json!({ "boot": { "template": { "name": "windows-template" } }, "disks": [] , "networks": [] }),
            "spec.boot.template.name \"windows-template\" is not allowed",
        ),
    ];
    let mut uids = Vec::new();
    for (name, change, _) in &cases {
        let mut spec = small_spec(Some("pve"));
        if let (Some(spec), Some(change)) = (spec.as_object_mut(), change.as_object()) {
            spec.extend(change.clone());
        }
        apply_request(&requests, name, spec).await;
    }
    for (name, _, expected) in &cases {
        let message = request_refused(&requests, name, "NotAllowed").await;
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            message.contains(&format!("ProxmoxIdentity {identity:?}")),
            "{name} names the rule's owner: {message}"
        );
        uids.push(
            requests
                .get(name)
                .await
                .expect("request")
                .metadata
                .uid
                .expect("uid"),
        );
    }
    for uid in &uids {
        assert_eq!(vms_marked_with(&h, uid).await, 0, "nothing was created");
    }
    // What is allowed works, with a VMID from the identity's range.
    apply_request(&requests, "allowed", small_spec(Some("pve"))).await;
    let ready = h.wait_ready("allowed").await;
    let vmid = ready.status.and_then(|s| s.vmid).expect("vmid");
    assert!((7000..=7999).contains(&vmid), "VMID {vmid}");
    // A ProxmoxCluster cannot widen its identity.
    h.create_cluster(
        "wider",
        &identity,
        json!({ "storages": ["local-lvm", "local"], "vmidRange": { "min": 100, "max": 200 } }),
    )
    .await;
    let message = cluster_condition(
        &h.client,
        &h.namespace,
        "wider",
        "IdentityAllowed",
        "WidensIdentity",
    )
    .await;
    assert!(
        message.contains("spec.allowed.storages[1] \"local\"")
            && message.contains("spec.allowed.vmidRange 100-200"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test]
async fn what_proxmox_can_tell_is_checked_before_a_vmid_is_recorded_or_a_task_is_sent() {
    let h = Harness::start("validate").await;
    let requests = h.requests();
    // Each case names something Proxmox does not have, or cannot use for it; none may start a
    // task or record a VMID.
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "no-such-iso",
            json!({ "boot": { "iso": { "volume": "local:iso/not-there.iso" } } }),
            "NotFoundInProxmox",
            "spec.boot.iso.volume",
        ),
        (
            "no-such-bridge",
            json!({ "networks": [{ "name": "net0", "bridge": "vmbr7" }] }),
            "NotFoundInProxmox",
            "spec.networks[0].bridge",
        ),
        (
            "no-such-storage",
            json!({ "disks": [{ "slot": "scsi0", "storage": "ceph-fast", "sizeGiB": 2 }] }),
            "NotFoundInProxmox",
            "spec.disks[0].storage",
        ),
        (
            "iso-storage-for-a-disk",
            json!({ "disks": [{ "slot": "scsi0", "storage": "local", "sizeGiB": 2 }] }),
            "UnsuitableInProxmox",
            "spec.disks[0].storage",
        ),
        (
            // The template's disk is 8 GiB: a clone could never be made 4 GiB (disks only grow).
            "smaller-than-its-template",
            json!({
                "boot": { "template": { "name": "debian-12-template" } },
                "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
                "networks": [],
            }),
            "UnsuitableInProxmox",
            "spec.boot.template",
        ),
    ];
    for (name, change, _, _) in &cases {
        let mut spec = small_spec(None);
        if let (Some(spec), Some(change)) = (spec.as_object_mut(), change.as_object()) {
            spec.extend(change.clone());
        }
        apply_request(&requests, name, spec).await;
    }
    for (name, _, reason, field) in &cases {
        let message = request_refused(&requests, name, reason).await;
        assert!(message.starts_with(field), "{name}: {message}");
        let request = requests.get(name).await.expect("request");
        assert_eq!(
            request.status.and_then(|s| s.vmid),
            None,
            "{name}: no VMID recorded"
        );
    }
    assert_eq!(
        h.sim.stats().tasks_started,
        0,
        "no create or clone was sent: {:?}",
        h.sim.stats().tasks_by_type
    );
    h.stop().await;
}

#[tokio::test]
async fn a_stale_or_forged_vmid_never_lets_one_tenant_touch_another_tenants_vm() {
    let mut h = Harness::start_all_namespaces("tenancy-vmid").await;
    let team_a = other_namespace(&h, "a", json!({})).await;
    let team_b = other_namespace(&h, "b", json!({})).await;
    let identity = h
        .create_identity(
            "shared",
            &h.root_config(),
            json!({ "allowedNamespaces": { "list": [team_a, team_b] } }),
        )
        .await;
    for ns in [&team_a, &team_b] {
        create_cluster_in(&h.client, ns, "pve", &identity, json!({})).await;
    }
    let requests_a: Api<MachineRequest> = Api::namespaced(h.client.clone(), &team_a);
    apply_request(&requests_a, "web", small_spec(Some("pve"))).await;
    let theirs = h
        .wait_ready_in(&requests_a, "web")
        .await
        .status
        .and_then(|s| s.vmid)
        .expect("vmid");
    let before = h.pve.qemu_config("pve", theirs).await.expect("config");

    // B's request arrives with A's VMID already in its status (a stale copy restored from a
    // backup, or a tenant allowed to write status), before the controller has seen it.
    h.crash_controller().await;
    let requests_b: Api<MachineRequest> = Api::namespaced(h.client.clone(), &team_b);
    apply_request(&requests_b, "web", small_spec(Some("pve"))).await;
    requests_b
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "vmid": theirs, "node": "pve" } })),
        )
        .await
        .expect("status written");
    h.start_controller();
    let ours = h
        .wait_ready_in(&requests_b, "web")
        .await
        .status
        .and_then(|s| s.vmid)
        .expect("vmid");
    assert_ne!(ours, theirs, "B got a VM of its own");
    let after = h.pve.qemu_config("pve", theirs).await.expect("config");
    assert_eq!(
        before.digest, after.digest,
        "A's VM was not changed by B's reconcile"
    );
    // Deleting B removes B's VM only.
    h.delete_and_wait_gone_in(&requests_b, "web").await;
    assert!(
        h.pve.qemu_status("pve", ours).await.is_err(),
        "B's VM is gone"
    );
    let still = h
        .pve
        .qemu_config("pve", theirs)
        .await
        .expect("A's VM is there");
    assert_eq!(before.digest, still.digest, "and untouched");
    h.wait_ready_in(&requests_a, "web").await;
    h.stop().await;
}
