//! What every test module shares: [`Harness`] (an embedded simulator with short tasks, clients
//! built from `proxmox:` YAML with each kind of credentials and trust, and the simulator's
//! `/_sim/*` controls: stats, faults, users and tokens), fast retry and task-wait options, a small
//! VM ([`small_vm`]), and helpers to run tasks and expect errors.

use std::time::Duration;

use pve_client::api::qemu::{StopOptions, VmConfigUpdate};
use pve_client::api::tasks::WaitOptions;
use pve_client::api::vmconfig::{Disk, DiskSlot, Drive, Nic, NicModel, VmConfig};
use pve_client::request::{ApiRequest, Method, Params};
use pve_client::{ClientOptions, ExitStatus, PveClient, PveConfig, PveError, RetryPolicy, Upid};
use pve_sim::config::ClusterConfig;
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

pub const ROOT_PW: &str = "sim-root-password";

pub const NODE: &str = "pve";

pub const ISO: &str = "local:iso/debian-12.7.0-amd64-netinst.iso";

pub const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs ops@example";

/// Short tasks so that the whole test binary runs in seconds.
pub fn fast_cluster() -> ClusterConfig {
    let mut cfg = ClusterConfig::default();
    let d = &mut cfg.task_durations_ms;
    d.create = 60;
    d.start = 40;
    d.stop = 30;
    d.shutdown = 40;
    d.reboot = 40;
    d.reset = 30;
    d.destroy = 40;
    d.clone = 60;
    d.config = 30;
    d.resize = 30;
    d.other = 30;
    cfg
}

/// Polls tasks quickly (the simulator's tasks take tens of milliseconds).
pub fn fast_wait() -> WaitOptions {
    WaitOptions {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        timeout: Some(Duration::from_secs(20)),
        log_tail_lines: 5,
    }
}

/// Client options whose GET retries back off for milliseconds, not seconds.
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        },
        ..ClientOptions::default()
    }
}

/// How a test client trusts the simulator's certificate.
pub enum Trust<'a> {
    Fingerprint(&'a str),
    CaBundle(&'a str),
    PublicRoots,
    Insecure,
}

/// A running simulator plus a plain HTTPS client for its `/_sim/*` control endpoints.
pub struct Harness {
    pub sim: RunningSim,
    pub control: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(fast_cluster()).await
    }

    pub async fn start_with(config: ClusterConfig) -> Self {
        let mut opts = SimOptions::new(ROOT_PW);
        opts.config = config;
        let sim = SimServer::start(opts).await.expect("the simulator starts");
        let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("the sim's CA");
        let control = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .expect("control client");
        Self { sim, control }
    }

    /// A client from a `proxmox:` YAML document with `credentials` (YAML lines) and `trust`.
    pub fn client_yaml(
        &self,
        credentials: &str,
        trust: Trust<'_>,
        options: ClientOptions,
    ) -> PveClient {
        let trust = match trust {
            Trust::Fingerprint(fp) => format!("  fingerprint: \"{fp}\"\n"),
            Trust::CaBundle(pem) => {
                let mut s = String::from("  caBundle: |\n");
                for line in pem.lines() {
                    s.push_str("    ");
                    s.push_str(line);
                    s.push('\n');
                }
                s
            }
            Trust::PublicRoots => String::new(),
            Trust::Insecure => "  insecureSkipVerify: true\n".to_owned(),
        };
        let doc = format!(
            "proxmox:\n  url: \"{}\"\n{credentials}{trust}",
            self.sim.url()
        );
        let config = PveConfig::from_yaml_str(&doc).expect("a valid proxmox: section");
        PveClient::with_options(&config, options).expect("the client builds")
    }

    /// `root@pam` with a ticket, trusting the pinned fingerprint.
    pub fn root(&self) -> PveClient {
        self.password_client("root@pam", ROOT_PW, fast_options())
    }

    pub fn password_client(&self, user: &str, password: &str, options: ClientOptions) -> PveClient {
        self.client_yaml(
            &format!("  username: \"{user}\"\n  password: \"{password}\"\n"),
            Trust::Fingerprint(self.sim.fingerprint()),
            options,
        )
    }

    pub fn token_client(&self, token_id: &str, secret: &str) -> PveClient {
        self.client_yaml(
            &format!("  tokenID: \"{token_id}\"\n  tokenSecret: \"{secret}\"\n"),
            Trust::Fingerprint(self.sim.fingerprint()),
            fast_options(),
        )
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_sim{path}", self.sim.base_url());
        let mut req = self.control.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the sim control endpoint answers");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("control answers are JSON")
    }

    pub async fn stats(&self) -> Value {
        self.control(reqwest::Method::GET, "/stats", None).await
    }

    /// How many requests the simulator saw for `METHOD /path/template`.
    pub async fn requests_to(&self, endpoint: &str) -> u64 {
        self.stats().await["requests_by_endpoint"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    /// Asserts that the simulator saw `expected` requests for `endpoint` (`METHOD /path/template`);
    /// `why` says what the count shows.
    pub async fn expect_requests(&self, endpoint: &str, expected: u64, why: &str) {
        assert_eq!(
            self.requests_to(endpoint).await,
            expected,
            "requests to {endpoint}: {why}"
        );
    }

    /// Moves the simulator's clock forward by `secs` (tickets age) without waiting.
    pub async fn advance_clock(&self, secs: u64) {
        self.control(
            reqwest::Method::POST,
            "/clock",
            Some(json!({ "advance_secs": secs })),
        )
        .await;
    }

    pub async fn reset_stats(&self) {
        self.control(reqwest::Method::DELETE, "/stats", None).await;
    }

    pub async fn faults(&self, rules: Value) {
        self.control(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({ "seed": 7, "rules": rules })),
        )
        .await;
    }

    /// A raw request without typed validation (to provoke what the typed API refuses to send).
    pub async fn raw(
        client: &PveClient,
        method: Method,
        template: &'static str,
        path: &[(&str, &str)],
        params: &[(&str, &str)],
    ) -> Result<Value, PveError> {
        let mut p = Params::new();
        for (k, v) in params {
            p.str(*k, *v);
        }
        let resp = client
            .execute(&ApiRequest::new(method, template, path, p))
            .await?;
        Ok(resp.data)
    }

    /// Creates `userid` (with `password`) through the API as root, grants `roles` to it on each
    /// path, and when `token` is given creates a privilege-separated token with the same grants.
    /// Returns the token's secret.
    pub async fn create_user(
        &self,
        root: &PveClient,
        userid: &str,
        password: &str,
        grants: &[(&str, &str)],
        token: Option<&str>,
    ) -> Option<String> {
        Self::raw(
            root,
            Method::Post,
            "/access/users",
            &[],
            &[("userid", userid), ("password", password)],
        )
        .await
        .expect("root creates the user");
        let secret = match token {
            Some(t) => {
                let data = Self::raw(
                    root,
                    Method::Post,
                    "/access/users/{userid}/token/{tokenid}",
                    &[("userid", userid), ("tokenid", t)],
                    &[("privsep", "1")],
                )
                .await
                .expect("root creates the token");
                assert_eq!(data["full-tokenid"], format!("{userid}!{t}"));
                Some(data["value"].as_str().expect("token secret").to_owned())
            }
            None => None,
        };
        for (path, role) in grants {
            let mut params = vec![("path", *path), ("roles", *role), ("users", userid)];
            let full;
            if let Some(t) = token {
                full = format!("{userid}!{t}");
                params.push(("tokens", &full));
            }
            Self::raw(root, Method::Put, "/access/acl", &[], &params)
                .await
                .expect("root grants the ACL");
        }
        secret
    }

    /// [`Harness::create_user`] with `PVEAuditor` on `/`: a user (and token) that may read
    /// everything and change nothing.
    pub async fn create_auditor(
        &self,
        root: &PveClient,
        userid: &str,
        password: &str,
        token: Option<&str>,
    ) -> Option<String> {
        self.create_user(root, userid, password, &[("/", "PVEAuditor")], token)
            .await
    }
}

pub fn small_vm(name: &str) -> VmConfig {
    VmConfig {
        name: Some(name.into()),
        cores: Some(1),
        memory_mib: Some(512),
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::scsi(0).expect("scsi0"),
        Drive::Disk(Disk::new("local-lvm", 1.0)),
    )
    .nic(0, Nic::new(NicModel::Virtio, "vmbr0"))
}

pub async fn create_and_wait(client: &PveClient, vmid: u32, vm: &VmConfig) -> Upid {
    let upid = client
        .qemu_create(NODE, vmid, vm, false)
        .await
        .expect("create is accepted");
    let exit = client
        .wait_task(&upid, &fast_wait())
        .await
        .expect("the create task succeeds");
    assert_eq!(exit, ExitStatus::Ok);
    upid
}

pub async fn run(client: &PveClient, upid: Upid) {
    let exit = client.wait_task(&upid, &fast_wait()).await;
    assert!(
        matches!(exit, Ok(ExitStatus::Ok)),
        "task {upid} should end OK: {exit:?}"
    );
}

/// A synchronous update of `vmid`'s config on [`NODE`] without digest, deletions or reverts.
pub async fn update_sync(client: &PveClient, vmid: u32, vm: &VmConfig) -> Result<(), PveError> {
    client
        .qemu_update_sync(NODE, vmid, &VmConfigUpdate::set(vm)?)
        .await
}

/// Starts `vmid` on [`NODE`] and waits for the start task to end OK.
pub async fn start_and_wait(client: &PveClient, vmid: u32) {
    let upid = client
        .qemu_start(NODE, vmid)
        .await
        .unwrap_or_else(|e| panic!("start of VM {vmid} is accepted: {e:?}"));
    run(client, upid).await;
}

/// Stops `vmid` on [`NODE`] (default options) and waits for the stop task to end OK.
pub async fn stop_and_wait(client: &PveClient, vmid: u32) {
    let upid = client
        .qemu_stop(NODE, vmid, &StopOptions::default())
        .await
        .unwrap_or_else(|e| panic!("stop of VM {vmid} is accepted: {e:?}"));
    run(client, upid).await;
}

/// Creates `vmid` as [`small_vm`] `name` on [`NODE`], which must be refused: the error.
pub async fn expect_create_err(client: &PveClient, vmid: u32, name: &str, what: &str) -> PveError {
    expect_err(
        client.qemu_create(NODE, vmid, &small_vm(name), false).await,
        what,
    )
}

/// Starts `vmid` on [`NODE`] and waits for the start task, which must fail: its error.
pub async fn expect_start_to_fail(client: &PveClient, vmid: u32, what: &str) -> PveError {
    let upid = client
        .qemu_start(NODE, vmid)
        .await
        .unwrap_or_else(|e| panic!("{what}: the start is accepted: {e:?}"));
    expect_err(client.wait_task(&upid, &fast_wait()).await, what)
}

pub fn expect_err<T: std::fmt::Debug>(r: Result<T, PveError>, what: &str) -> PveError {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("UTF-8 after decoding")
        .into_owned()
}
