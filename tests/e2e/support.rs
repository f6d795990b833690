//! Helpers shared by the e2e tests: deadlines, logging, and the [`Harness`] (a namespace, a
//! simulator and the controller running in the test process) that most modules run against.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, Resource};
use pve_client::api::vmconfig::VmConfig;
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{InProcessController, RunArgs};
use pve_operator_api::{
    HasConditions, MachineRequest, ProxmoxCluster, ProxmoxIdentity, ProxmoxImage,
};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::crds::install_crds;

/// Awaits `condition` with a deadline, so that a broken behaviour fails the test instead of
/// hanging it. The deadline is a safety net, not a timing assertion.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after 60s waiting for {what}"),
    }
}

/// Polls `check` every 20 ms until it holds, failing after 30 s with `what`.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Polls `probe` until it returns true (every 50 ms, failing after 60 s with `what`).
pub async fn until<F: Future<Output = bool>>(what: &str, mut probe: impl FnMut() -> F) {
    within(what, async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The shared control plane with the CRDs installed, an admin client of it, and a new namespace
/// named after `prefix`: what a test that starts no [`Harness`] begins with.
pub async fn shared_namespace(prefix: &str) -> (&'static testenv::TestEnv, Client, String) {
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let (client, namespace) = namespace_on(env, prefix).await;
    (env, client, namespace)
}

/// An admin client of `env` with the CRDs installed, and a new namespace named after `prefix`.
pub async fn namespace_on(env: &testenv::TestEnv, prefix: &str) -> (Client, String) {
    let client = env.client().expect("client");
    install_crds(&client).await;
    let namespace = env
        .create_namespace(&client, prefix)
        .await
        .expect("namespace");
    (client, namespace)
}

/// Sends the tests' logs to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=debug`), and
/// counts Proxmox requests into the controller's metrics as `pve-operator run` does.
pub fn init_logging() {
    use pve_operator::ops::metrics::ProxmoxRequestLayer;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = std::env::var("TEST_LOG").ok().map(|filter| {
        tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::EnvFilter::new(filter))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(ProxmoxRequestLayer.with_filter(ProxmoxRequestLayer::filter()))
        .try_init();
}

/// A controller, a simulator and a namespace for one test.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub sim: RunningSim,
    pub pve: PveClient,
    pub config_path: PathBuf,
    controller: Option<InProcessController>,
    /// A control plane of the test's own, when its controller watches every namespace.
    own_control_plane: Option<testenv::TestEnv>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(prefix: &str) -> Harness {
        Self::start_with(prefix, |_| {}).await
    }

    /// Like [`Harness::start`], with the simulator's options adjusted first (task durations,
    /// cluster shape, ...).
    pub async fn start_with(prefix: &str, adjust: impl FnOnce(&mut SimOptions)) -> Harness {
        let mut harness = Self::prepare(prefix, adjust).await;
        harness.start_controller();
        harness
    }

    /// Like [`Harness::start`], with the controller connecting with the `proxmox:` config that
    /// `config` writes for the running simulator (e.g. for a least-privilege token it set up
    /// there first). `pve` and the simulator stay root@pam's, for the test's own reads and
    /// changes.
    pub async fn start_with_config(
        prefix: &str,
        config: impl AsyncFnOnce(&RunningSim) -> String,
    ) -> Harness {
        Self::start_with_config_on(prefix, pve_sim::PveVersion::Pve9_1, config).await
    }

    /// Like [`Harness::start_with_config`], on a simulator that is Proxmox VE `version`.
    pub async fn start_with_config_on(
        prefix: &str,
        version: pve_sim::PveVersion,
        config: impl AsyncFnOnce(&RunningSim) -> String,
    ) -> Harness {
        Self::start_with_sim_and_config(prefix, |o| o.config.pve_version = version, config).await
    }

    /// Like [`Harness::start_with_config`], with the simulator's options adjusted first.
    pub async fn start_with_sim_and_config(
        prefix: &str,
        adjust: impl FnOnce(&mut SimOptions),
        config: impl AsyncFnOnce(&RunningSim) -> String,
    ) -> Harness {
        let mut harness = Self::prepare(prefix, adjust).await;
        let path = harness._dir.path().join("controller.yaml");
        std::fs::write(&path, config(&harness.sim).await).expect("controller config written");
        harness.config_path = path;
        harness.start_controller();
        harness
    }

    /// Like [`Harness::start`], with a control plane of its own and a controller that watches
    /// every namespace (for tests of several tenants; the default connection still serves only
    /// the test's namespace).
    pub async fn start_all_namespaces(prefix: &str) -> Harness {
        let env = testenv::TestEnv::start().await.expect("own control plane");
        let mut harness = Self::prepare_on(&env, prefix, |_| {}).await;
        harness.own_control_plane = Some(env);
        harness.start_controller();
        harness
    }

    /// Everything but the controller: namespace, simulator, root@pam config and client.
    async fn prepare(prefix: &str, adjust: impl FnOnce(&mut SimOptions)) -> Harness {
        let env = testenv::TestEnv::shared().await.expect("control plane");
        Self::prepare_on(env, prefix, adjust).await
    }

    async fn prepare_on(
        env: &testenv::TestEnv,
        prefix: &str,
        adjust: impl FnOnce(&mut SimOptions),
    ) -> Harness {
        init_logging();
        let (client, namespace) = namespace_on(env, prefix).await;
        let mut options = SimOptions::new("e2e-root-password");
        adjust(&mut options);
        let sim = SimServer::start(options).await.expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let (config_path, pve) = root_config_in(&sim, dir.path());
        Harness {
            client,
            namespace,
            sim,
            pve,
            config_path,
            controller: None,
            own_control_plane: None,
            _dir: dir,
        }
    }

    /// Like [`Harness::start_with`], with the controller's options adjusted too.
    pub async fn start_with_args(
        prefix: &str,
        adjust: impl FnOnce(&mut SimOptions),
        args: impl FnOnce(&mut RunArgs),
    ) -> Harness {
        let mut harness = Self::prepare(prefix, adjust).await;
        harness.start_controller_with(args);
        harness
    }

    /// Starts the controller (again), watching only this test's namespace.
    pub fn start_controller(&mut self) {
        self.start_controller_with(|_| {});
    }

    /// Like [`Harness::start_controller`], with the controller's options adjusted first.
    pub fn start_controller_with(&mut self, adjust: impl FnOnce(&mut RunArgs)) {
        let all = self.own_control_plane.is_some();
        let mut args = RunArgs {
            config: Some(self.config_path.clone()),
            namespace: (!all).then(|| self.namespace.clone()),
            default_allowed_namespaces: vec![self.namespace.clone()],
            // Identity Secrets live in the test's namespace, and this controller serves only the
            // identities labelled for this test (identities are cluster-scoped and tests share
            // the control plane).
            identity_namespace: Some(self.namespace.clone()),
            identity_selector: vec![self.identity_selector()],
            inventory_interval: 1,
            task_poll_interval: 100,
            resync_interval: 0,
            shutdown_grace: 5,
            ..RunArgs::default()
        };
        adjust(&mut args);
        self.controller = Some(InProcessController::start(args, self.client.clone()));
    }

    /// Stops the controller abruptly, as a crash would (no graceful shutdown).
    pub async fn crash_controller(&mut self) {
        if let Some(controller) = self.controller.take() {
            controller.abort().await;
        }
    }

    /// The label (`key=value`) that the identities of this test carry.
    pub fn identity_selector(&self) -> String {
        format!("{}={}", crate::tenancy::TEST_LABEL, self.namespace)
    }

    pub fn requests(&self) -> Api<MachineRequest> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn apply(&self, name: &str, spec: Value) {
        let request = machine_request(name, spec);
        apply_forced(&self.requests(), "e2e-tests", name, &request).await;
    }

    pub async fn apply_example(&self, file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("example readable");
        let request: Value = serde_yaml::from_str(&text).expect("example is YAML");
        let name = request["metadata"]["name"]
            .as_str()
            .expect("example has a name")
            .to_string();
        self.apply(&name, request["spec"].clone()).await;
        name
    }

    /// Waits until the request `name` of `requests` (any namespace) is Ready.
    pub async fn wait_ready_in(
        &self,
        requests: &Api<MachineRequest>,
        name: &str,
    ) -> MachineRequest {
        wait_for(requests, name, &format!("{name} to be Ready"), |r| {
            r.status.as_ref().is_some_and(|s| s.is_ready())
        })
        .await
    }

    /// Deletes the request `name` of `requests` (any namespace) and waits until it is gone.
    pub async fn delete_and_wait_gone_in(&self, requests: &Api<MachineRequest>, name: &str) {
        delete_and_wait_gone(requests, name).await;
    }

    /// Waits until the request's Ready condition is True, and returns it.
    pub async fn wait_ready(&self, name: &str) -> MachineRequest {
        self.wait_ready_within(name, Duration::from_secs(60)).await
    }

    /// Like [`Harness::wait_ready`], failing after `deadline` (a guard against hangs, not a
    /// speed assertion).
    pub async fn wait_ready_within(&self, name: &str, deadline: Duration) -> MachineRequest {
        let ready = |obj: Option<&MachineRequest>| {
            obj.and_then(|o| o.status.as_ref())
                .is_some_and(|s| s.is_ready())
        };
        let result =
            tokio::time::timeout(deadline, await_condition(self.requests(), name, ready)).await;
        match result {
            Ok(Ok(Some(obj))) => obj,
            other => {
                let now = self.requests().get_opt(name).await.ok().flatten();
                panic!(
                    "{name} did not become Ready ({:?}); status now: {:#?}",
                    other.map(|r| r.map(|o| o.is_some())),
                    now.and_then(|o| o.status)
                )
            }
        }
    }

    /// Deletes a request and waits until the object is gone (the finalizer released).
    pub async fn delete_and_wait_gone(&self, name: &str) {
        delete_and_wait_gone(&self.requests(), name).await;
    }

    /// The VMs of the simulator, by VMID, with their raw config.
    pub async fn vm_config(&self, vmid: u32) -> Option<pve_client::api::vmconfig::VmConfigView> {
        self.pve.qemu_config("pve", vmid).await.ok()
    }

    /// Whether VM `vmid` (on node `pve`) runs, as Proxmox says now.
    pub async fn vm_running(&self, vmid: u32) -> bool {
        self.pve
            .qemu_status("pve", vmid)
            .await
            .expect("status")
            .is_running()
    }

    /// Creates VM `vmid` with `config` directly in Proxmox (as root@pam, not through the
    /// controller), and waits for the task.
    pub async fn create_vm(&self, vmid: u32, config: &VmConfig) {
        let upid = self.pve.qemu_create("pve", vmid, config, false).await;
        self.wait_task(upid, &format!("creating VM {vmid}")).await;
    }

    /// Stops VM `vmid` directly in Proxmox, and waits for the task.
    pub async fn stop_vm(&self, vmid: u32) {
        let upid = self.pve.qemu_stop("pve", vmid, &Default::default()).await;
        self.wait_task(upid, &format!("stopping VM {vmid}")).await;
    }

    /// Destroys VM `vmid` directly in Proxmox, and waits for the task.
    pub async fn destroy_vm(&self, vmid: u32) {
        let upid = self.pve.qemu_delete("pve", vmid, Default::default()).await;
        self.wait_task(upid, &format!("destroying VM {vmid}")).await;
    }

    /// Waits for the task that `started` (the answer to the call that starts it) names.
    async fn wait_task(&self, started: pve_client::Result<pve_client::Upid>, what: &str) {
        let upid = started.unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        self.pve
            .wait_task(&upid, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{what}: the task failed: {e}"));
    }

    /// The Events about object `name` in the test's namespace.
    pub async fn events_about(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// How many calls of `endpoint` (`METHOD /template`) the simulator has answered.
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.sim
            .stats()
            .requests_by_endpoint
            .get(endpoint)
            .copied()
            .unwrap_or_default()
    }

    pub async fn vm_exists(&self, vmid: u32) -> bool {
        self.pve
            .cluster_resources(None)
            .await
            .expect("resources")
            .iter()
            .any(|r| r.vmid == Some(vmid))
    }

    pub async fn stop(mut self) {
        if let Some(controller) = self.controller.take() {
            let _ = within("the controller to stop", controller.stop()).await;
        }
        self.sim.shutdown().await;
    }
}

/// Waits until the request has condition `type_` with `status`, returning the request.
pub async fn wait_condition(h: &Harness, name: &str, type_: &str, status: &str) -> MachineRequest {
    wait_status(&h.requests(), name, type_, status).await
}

/// A resource whose status carries conditions (none before it has a status).
pub trait WithConditions {
    /// The conditions it has now.
    fn conditions_now(&self) -> &[Condition];

    /// Condition `type_`, if set.
    fn condition_now(&self, type_: &str) -> Option<&Condition> {
        self.conditions_now().iter().find(|c| c.type_ == type_)
    }

    /// The message of condition `type_` ("" when it is not set).
    fn message_of(&self, type_: &str) -> String {
        self.condition_now(type_)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }
}

/// [`WithConditions`] for resources whose `status` is an `Option` of a [`HasConditions`].
macro_rules! with_conditions_of_status {
    ($($kind:ty),*) => {$(
        impl WithConditions for $kind {
            fn conditions_now(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| s.conditions())
            }
        }
    )*};
}

with_conditions_of_status!(
    MachineRequest,
    ProxmoxCluster,
    ProxmoxIdentity,
    ProxmoxImage
);

/// Waits (at most 60 s) until object `name` of `api` exists and `wanted` holds for it, and
/// returns it; `what` names the wait when it times out.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, wanted: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    within(
        what,
        await_condition(api.clone(), name, |obj: Option<&K>| {
            obj.is_some_and(&wanted)
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("watching {name} for {what}: {e}"))
    .unwrap_or_else(|| panic!("{name} exists once {what}"))
}

/// Waits until condition `type_` of object `name` has `status`, and returns the object.
pub async fn wait_status<K>(api: &Api<K>, name: &str, type_: &str, status: &str) -> K
where
    K: WithConditions + Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let what = format!("{name} to have {type_}={status}");
    wait_for(api, name, &what, |obj| {
        obj.condition_now(type_).is_some_and(|c| c.status == status)
    })
    .await
}

/// Waits until condition `type_` of object `name` has `reason`, and returns the object.
pub async fn wait_reason<K>(api: &Api<K>, name: &str, type_: &str, reason: &str) -> K
where
    K: WithConditions + Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let what = format!("{name} to have {type_} with reason {reason}");
    wait_for(api, name, &what, |obj| {
        obj.condition_now(type_).is_some_and(|c| c.reason == reason)
    })
    .await
}

/// Waits (at most 60 s) until object `name` of `api` is gone (its finalizers released).
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    within(
        &format!("{name} to be gone"),
        await_condition(api.clone(), name, |obj: Option<&K>| obj.is_none()),
    )
    .await
    .unwrap_or_else(|e| panic!("watching {name} until it is gone: {e}"));
}

/// Deletes object `name` of `api` and waits until it is gone (its finalizers released).
pub async fn delete_and_wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    api.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
    wait_gone(api, name).await;
}

/// Server-side applies `doc` as object `name` of `api` with `params` (the field manager, and
/// whether to force): the server's answer, for tests of what it refuses.
pub async fn server_apply<K>(
    api: &Api<K>,
    params: &PatchParams,
    name: &str,
    doc: &(impl serde::Serialize + Debug),
) -> kube::Result<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    api.patch(name, params, &Patch::Apply(doc)).await
}

/// Server-side applies `doc` as object `name` of `api`, as field manager `manager` taking over
/// any field another manager owns; fails the test, naming the object, if the server refuses.
pub async fn apply_forced<K>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    doc: &(impl serde::Serialize + Debug),
) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    server_apply(api, &PatchParams::apply(manager).force(), name, doc)
        .await
        .unwrap_or_else(|e| panic!("{name} applies as {manager}: {e}"))
}

/// Writes the root@pam config of `sim` to `proxmox.yaml` in `dir`; returns its path and a
/// client of it.
pub fn root_config_in(sim: &RunningSim, dir: &std::path::Path) -> (PathBuf, PveClient) {
    let path = dir.join("proxmox.yaml");
    let config = sim.root_config_yaml();
    std::fs::write(&path, &config).expect("config written");
    let pve = PveClient::new(&PveConfig::from_yaml_str(&config).expect("config parses"))
        .expect("pve client");
    (path, pve)
}

/// `status.vmid` of `request`, which must be set.
pub fn vmid_of(request: &MachineRequest) -> u32 {
    request
        .status
        .as_ref()
        .and_then(|s| s.vmid)
        .expect("status.vmid is set")
}

/// MachineRequest `name` with `spec`, as a document to apply.
pub fn machine_request(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "MachineRequest",
        "metadata": { "name": name },
        "spec": spec,
    })
}

/// The cheapest request: network boot, one small disk.
pub fn small_spec() -> Value {
    json!({
        "memory": { "sizeMiB": 256 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 2 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "network": {} },
    })
}

/// Creates (or replaces) Secret `name` in `namespace` with `config` under `config.yaml`, the
/// form an identity's Secret takes.
pub async fn apply_config_secret(client: &Client, namespace: &str, name: &str, config: &str) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    let doc = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name },
        "stringData": { "config.yaml": config },
    });
    apply_forced(&secrets, "e2e-tests", name, &doc).await;
}
