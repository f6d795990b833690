//! Helpers shared by the e2e tests: deadlines, logging, and the [`Harness`] (a namespace, a
//! simulator and the controller running in the test process) that most modules run against.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use pve_client::{PveClient, PveConfig};
use pve_operator::cli::run::{InProcessController, RunArgs};
use pve_operator_api::{HasConditions, MachineRequest};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::json;

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
        let mut harness = Self::prepare(prefix, |o| o.config.pve_version = version).await;
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
        let config_path = dir.path().join("proxmox.yaml");
        let config = sim.root_config_yaml();
        std::fs::write(&config_path, &config).expect("config written");
        let pve = PveClient::new(&PveConfig::from_yaml_str(&config).expect("config parses"))
            .expect("pve client");
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

    pub async fn apply(&self, name: &str, spec: serde_json::Value) {
        let request = json!({
            "apiVersion": "pve-operator.dev/v1alpha1",
            "kind": "MachineRequest",
            "metadata": { "name": name },
            "spec": spec,
        });
        self.requests()
            .patch(
                name,
                &PatchParams::apply("e2e-tests").force(),
                &Patch::Apply(&request),
            )
            .await
            .expect("MachineRequest applies");
    }

    pub async fn apply_example(&self, file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("example readable");
        let request: serde_json::Value = serde_yaml::from_str(&text).expect("example is YAML");
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
        let ready = |obj: Option<&MachineRequest>| {
            obj.and_then(|o| o.status.as_ref())
                .is_some_and(|s| s.is_ready())
        };
        within(
            &format!("{name} to be Ready"),
            await_condition(requests.clone(), name, ready),
        )
        .await
        .expect("watch")
        .expect("request exists")
    }

    /// Waits until the request `name` of `requests` is gone (its finalizer released).
    pub async fn wait_gone_in(&self, requests: &Api<MachineRequest>, name: &str) {
        within(
            &format!("{name} to be gone"),
            await_condition(requests.clone(), name, |obj: Option<&MachineRequest>| {
                obj.is_none()
            }),
        )
        .await
        .expect("watch");
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
        self.requests()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete accepted");
        let gone = |obj: Option<&MachineRequest>| obj.is_none();
        within(
            "the MachineRequest to be deleted (finalizer released)",
            await_condition(self.requests(), name, gone),
        )
        .await
        .expect("watch works");
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
    let wanted = |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == status)
        })
    };
    let found = within("the condition", await_condition(h.requests(), name, wanted))
        .await
        .expect("watch works");
    found.expect("the request exists")
}

/// `status.vmid` of `request`, which must be set.
pub fn vmid_of(request: &MachineRequest) -> u32 {
    request
        .status
        .as_ref()
        .and_then(|s| s.vmid)
        .expect("status.vmid is set")
}

/// The cheapest request: network boot, one small disk.
pub fn small_spec() -> serde_json::Value {
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
    secrets
        .patch(
            name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&doc),
        )
        .await
        .expect("Secret applies");
}
