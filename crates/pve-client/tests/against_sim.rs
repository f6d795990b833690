//! Integration tests of pve-client against pve-sim, the project's Proxmox VE simulator (9.1 by default), over
//! real HTTPS: authentication (API token, ticket, renewal, re-login, CSRF), TLS trust (pinned
//! fingerprint, CA bundle, refusal of an untrusted certificate), the full VM lifecycle, tasks,
//! and every error kind as the server produces it, in both PVE 8 error styles (message in the
//! JSON body, or only in the HTTP reason phrase). Retries are checked by counting requests in the
//! simulator's `/_sim/stats`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use pve_client::api::cluster::ResourceType;
use pve_client::api::qemu::{
    CloneOptions, ConfigUpdate, DeleteOptions, DiskSize, ShutdownOptions, StopOptions,
};
use pve_client::api::tasks::{TaskListQuery, WaitOptions};
use pve_client::api::vmconfig::{
    AgentConfig, Bios, CacheMode, Disk, DiskSlot, Drive, EfiDisk, IpConfig, Ipv4Config, Ipv6Config,
    Nic, NicModel, ScsiHw, VmConfig,
};
use pve_client::request::{ApiRequest, Method, Params};
use pve_client::{
    ClientOptions, ErrorKind, ExitStatus, PveClient, PveConfig, PveError, RetryPolicy, Upid,
};
use pve_sim::config::{AuthErrorStyle, ClusterConfig};
use pve_sim::{RunningSim, SimOptions, SimServer};
use serde_json::{Value, json};

const ROOT_PW: &str = "sim-root-password";
const NODE: &str = "pve";
const ISO: &str = "local:iso/debian-12.7.0-amd64-netinst.iso";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs ops@example";

/// Short tasks so that the whole file runs in seconds.
fn fast_cluster() -> ClusterConfig {
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
fn fast_wait() -> WaitOptions {
    WaitOptions {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        timeout: Some(Duration::from_secs(20)),
        log_tail_lines: 5,
    }
}

/// Client options whose GET retries back off for milliseconds, not seconds.
fn fast_options() -> ClientOptions {
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
enum Trust<'a> {
    Fingerprint(&'a str),
    CaBundle(&'a str),
    PublicRoots,
    Insecure,
}

/// A running simulator plus a plain HTTPS client for its `/_sim/*` control endpoints.
struct Harness {
    sim: RunningSim,
    control: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(fast_cluster()).await
    }

    async fn start_with(config: ClusterConfig) -> Self {
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
    fn client_yaml(
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
    fn root(&self) -> PveClient {
        self.password_client("root@pam", ROOT_PW, fast_options())
    }

    fn password_client(&self, user: &str, password: &str, options: ClientOptions) -> PveClient {
        self.client_yaml(
            &format!("  username: \"{user}\"\n  password: \"{password}\"\n"),
            Trust::Fingerprint(self.sim.fingerprint()),
            options,
        )
    }

    fn token_client(&self, token_id: &str, secret: &str) -> PveClient {
        self.client_yaml(
            &format!("  tokenID: \"{token_id}\"\n  tokenSecret: \"{secret}\"\n"),
            Trust::Fingerprint(self.sim.fingerprint()),
            fast_options(),
        )
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_sim{path}", self.sim.base_url());
        let mut req = self.control.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the sim control endpoint answers");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("control answers are JSON")
    }

    async fn stats(&self) -> Value {
        self.control(reqwest::Method::GET, "/stats", None).await
    }

    /// How many requests the simulator saw for `METHOD /path/template`.
    async fn requests_to(&self, endpoint: &str) -> u64 {
        self.stats().await["requests_by_endpoint"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    async fn reset_stats(&self) {
        self.control(reqwest::Method::DELETE, "/stats", None).await;
    }

    async fn faults(&self, rules: Value) {
        self.control(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({ "seed": 7, "rules": rules })),
        )
        .await;
    }

    /// A raw request without typed validation (to provoke what the typed API refuses to send).
    async fn raw(
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
    async fn create_user(
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
}

fn small_vm(name: &str) -> VmConfig {
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

async fn create_and_wait(client: &PveClient, vmid: u32, vm: &VmConfig) -> Upid {
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

async fn run(client: &PveClient, upid: Upid) {
    let exit = client.wait_task(&upid, &fast_wait()).await;
    assert!(
        matches!(exit, Ok(ExitStatus::Ok)),
        "task {upid} should end OK: {exit:?}"
    );
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, PveError>, what: &str) -> PveError {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

// ------------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn api_token_authenticates_writes_without_csrf_and_owns_its_tasks() {
    let h = Harness::start().await;
    let root = h.root();
    let secret = h
        .create_user(
            &root,
            "ops@pve",
            "ops-password",
            &[
                ("/vms", "PVEVMAdmin"),
                ("/storage", "PVEDatastoreUser"),
                ("/sdn/zones/localnetwork", "PVESDNUser"),
            ],
            Some("ci"),
        )
        .await
        .expect("a token secret");
    let token = h.token_client("ops@pve!ci", &secret);

    let version = token.version().await.expect("GET /version with the token");
    assert_eq!(
        version.major_minor(),
        Some((9, 1)),
        "the simulator's default"
    );
    let perms = token
        .permissions(None, None)
        .await
        .expect("the token reads its own permissions");
    assert!(perms.has("/vms", "VM.Allocate"), "{perms:?}");
    assert!(
        perms.has("/storage", "Datastore.AllocateSpace"),
        "{perms:?}"
    );

    let vmid = token.next_vmid().await.expect("nextid");
    h.reset_stats().await;
    let upid = create_and_wait(&token, vmid, &small_vm("token-vm")).await;
    let callers = h.stats().await["requests_by_caller"].clone();
    let callers: Vec<&String> = callers.as_object().expect("callers").keys().collect();
    assert_eq!(
        callers,
        ["ops@pve!ci"],
        "the sim saw the token as the caller"
    );
    assert_eq!(upid.user, "ops@pve!ci", "token tasks carry the token id");
    let status = token.task_status(&upid).await.expect("own task readable");
    assert_eq!(status.user, "ops@pve");
    assert_eq!(status.tokenid.as_deref(), Some("ci"));
    assert_eq!(token.login_count(), 0, "token auth never logs in");
}

#[tokio::test]
async fn ticket_auth_logs_in_once_for_concurrent_requests_and_sends_csrf_on_writes() {
    let h = Harness::start().await;
    let root = h.root();
    let calls: Vec<_> = (0..16).map(|_| root.version()).collect();
    for r in futures::future::join_all(calls).await {
        r.expect("concurrent GET /version with a ticket");
    }
    assert_eq!(
        root.login_count(),
        1,
        "one login for 16 concurrent requests"
    );
    assert_eq!(h.requests_to("POST /access/ticket").await, 1);

    // A write with the ticket succeeds only because the client sends the CSRF token: the same
    // request with the cookie alone is refused by the server.
    let vmid = root.next_vmid().await.expect("nextid");
    create_and_wait(&root, vmid, &small_vm("csrf-vm")).await;
    let login: Value = h
        .control
        .post(format!("{}/access/ticket", h.sim.url()))
        .form(&[("username", "root@pam"), ("password", ROOT_PW)])
        .send()
        .await
        .expect("raw login")
        .json()
        .await
        .expect("login JSON");
    let ticket = login["data"]["ticket"].as_str().expect("ticket").to_owned();
    let without_csrf = h
        .control
        .post(format!("{}/nodes/pve/qemu", h.sim.url()))
        .header(
            "Cookie",
            format!(
                "PVEAuthCookie={}",
                percent_encode(&ticket) // the ticket contains ':' and '='
            ),
        )
        .form(&[("vmid", "150"), ("memory", "512")])
        .send()
        .await
        .expect("raw POST");
    assert_eq!(without_csrf.status().as_u16(), 401);
    assert_eq!(
        root.login_count(),
        1,
        "no re-login was needed for the write"
    );
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn ticket_is_renewed_by_posting_the_ticket_once_the_renew_interval_passed() {
    let h = Harness::start().await;
    let root = h.root();
    h.create_user(
        &root,
        "alice@pve",
        "first-password",
        &[("/", "PVEAuditor")],
        None,
    )
    .await;
    let alice = h.password_client(
        "alice@pve",
        "first-password",
        ClientOptions {
            // Every request finds the ticket "old" and renews it first.
            ticket_renew_after: Duration::ZERO,
            ..fast_options()
        },
    );
    alice.version().await.expect("login with the password");
    assert_eq!(alice.login_count(), 1);

    // Change alice's password: a renewal that posted the (old) password would now fail, a
    // renewal that posts the current ticket keeps working.
    Harness::raw(
        &root,
        Method::Put,
        "/access/password",
        &[],
        &[
            ("userid", "alice@pve"),
            ("password", "second-password"),
            ("confirmation-password", ROOT_PW),
        ],
    )
    .await
    .expect("root changes alice's password");
    h.reset_stats().await;
    for _ in 0..3 {
        alice.nodes().await.expect("request after a ticket renewal");
    }
    assert_eq!(alice.login_count(), 4, "one renewal per request");
    let stats = h.stats().await;
    assert_eq!(
        stats["requests_by_endpoint"]["POST /access/ticket"].as_u64(),
        Some(3)
    );
    assert_eq!(
        stats["responses_by_status"]["401"].as_u64().unwrap_or(0),
        0,
        "no renewal was refused: {stats}"
    );
}

#[tokio::test]
async fn expired_ticket_leads_to_one_transparent_relogin_even_for_a_write() {
    let h = Harness::start().await;
    let root = h.root();
    root.version().await.expect("login");
    assert_eq!(root.login_count(), 1);
    // Three hours later the ticket (2 h lifetime) is dead; the client does not know yet.
    h.control(
        reqwest::Method::POST,
        "/clock",
        Some(json!({ "advance_secs": 3 * 3600 })),
    )
    .await;
    let vmid = root.next_vmid().await.expect("GET after expiry re-logs in");
    assert_eq!(root.login_count(), 2);
    h.control(
        reqwest::Method::POST,
        "/clock",
        Some(json!({ "advance_secs": 3 * 3600 })),
    )
    .await;
    create_and_wait(&root, vmid, &small_vm("after-expiry")).await;
    assert_eq!(
        root.login_count(),
        3,
        "the write was resent once after a re-login"
    );
    assert_eq!(
        h.stats().await["responses_by_status"]["401"].as_u64(),
        Some(2),
        "exactly one 401 per expiry"
    );
}

#[tokio::test]
async fn wrong_password_and_bad_token_secret_are_unauthorized_and_not_retryable() {
    let h = Harness::start().await;
    let bad = h.password_client("root@pam", "not-the-password", fast_options());
    let e = expect_err(bad.version().await, "wrong password");
    assert!(
        matches!(&e, PveError::Unauthorized { reason } if reason == "authentication failure"),
        "{e:?}"
    );
    assert!(!e.is_retryable());

    let root = h.root();
    h.create_user(
        &root,
        "ops@pve",
        "ops-password",
        &[("/", "PVEAuditor")],
        Some("ci"),
    )
    .await;
    let forged = h.token_client("ops@pve!ci", "00000000-0000-0000-0000-000000000000");
    let e = expect_err(forged.version().await, "bad token secret");
    assert!(
        matches!(&e, PveError::Unauthorized { reason } if reason == "Authentication failed!"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(
        h.requests_to("GET /version").await,
        1,
        "a 401 is not retried"
    );
    assert!(
        !e.to_string().contains("00000000-0000"),
        "the secret is never in an error: {e}"
    );
}

#[tokio::test]
async fn older_pve_401_reasons_are_reported_verbatim() {
    let mut cfg = fast_cluster();
    cfg.auth.error_style = AuthErrorStyle::Detailed;
    let h = Harness::start_with(cfg).await;
    let root = h.root();
    h.create_user(
        &root,
        "ops@pve",
        "ops-password",
        &[("/", "PVEAuditor")],
        Some("ci"),
    )
    .await;
    let forged = h.token_client("ops@pve!ci", "00000000-0000-0000-0000-000000000000");
    let e = expect_err(forged.version().await, "bad token secret");
    assert!(
        matches!(&e, PveError::Unauthorized { reason } if reason == "invalid token value!"),
        "{e:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// TLS trust

#[tokio::test]
async fn pinned_fingerprint_and_ca_bundle_are_trusted_and_anything_else_is_refused() {
    let h = Harness::start().await;
    let creds = format!("  username: root@pam\n  password: \"{ROOT_PW}\"\n");
    let pinned = h.client_yaml(
        &creds,
        Trust::Fingerprint(h.sim.fingerprint()),
        fast_options(),
    );
    pinned.version().await.expect("pinned fingerprint");
    let bundle = h.client_yaml(&creds, Trust::CaBundle(h.sim.ca_pem()), fast_options());
    bundle.version().await.expect("the sim's CA as bundle");
    let insecure = h.client_yaml(&creds, Trust::Insecure, fast_options());
    insecure.version().await.expect("insecureSkipVerify");

    let no_retry = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let wrong_fp = vec!["AB"; 32].join(":");
    let wrong = h.client_yaml(&creds, Trust::Fingerprint(&wrong_fp), no_retry.clone());
    let e = expect_err(wrong.version().await, "a different pinned fingerprint");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert!(e.to_string().contains("fingerprint"), "says why: {e}");
    assert!(
        e.to_string()
            .to_uppercase()
            .contains(&h.sim.fingerprint().to_uppercase()),
        "names the fingerprint the server presented: {e}"
    );

    let public = h.client_yaml(&creds, Trust::PublicRoots, no_retry.clone());
    let e = expect_err(public.version().await, "a self-signed CA with public roots");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        e.to_string().contains("not signed by a trusted CA"),
        "says why in words: {e}"
    );
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert!(
        e.to_string().to_lowercase().contains("certificate"),
        "says why: {e}"
    );

    let other_ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("another certificate")
        .cert
        .pem();
    let stranger = h.client_yaml(&creds, Trust::CaBundle(&other_ca), no_retry);
    let e = expect_err(stranger.version().await, "an unrelated CA bundle");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert_eq!(
        h.requests_to("POST /access/ticket").await,
        3,
        "no request (not even the password) reached the server over an untrusted connection"
    );
}

// ------------------------------------------------------------------------------------------------
// Inventory reads

#[tokio::test]
async fn node_storage_network_and_inventory_reads_decode() {
    let h = Harness::start().await;
    let root = h.root();
    let nodes = root.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, NODE);
    assert_eq!(
        nodes[0].ssl_fingerprint.as_deref(),
        Some(h.sim.fingerprint())
    );
    let status = root.node_status(NODE).await.expect("node status");
    assert_eq!(
        status.memory.and_then(|m| m.total),
        Some(64 << 30),
        "64 GiB node"
    );
    let images = root
        .storages(NODE, Some("images"), true)
        .await
        .expect("storages with images");
    let names: Vec<&str> = images.iter().map(|s| s.storage.as_str()).collect();
    assert_eq!(names, ["local-lvm"]);
    let isos = root
        .storage_content(NODE, "local", Some("iso"), None)
        .await
        .expect("ISO list");
    assert!(isos.iter().any(|v| v.volid == ISO), "{isos:?}");
    let bridges = root
        .network(
            NODE,
            Some(pve_client::api::nodes::NetworkTypeFilter::AnyBridge),
        )
        .await
        .expect("bridges");
    let mut names: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["vmbr0", "vmbr1"]);
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let template = vms
        .iter()
        .find(|r| r.vmid == Some(9000))
        .expect("template 9000 listed");
    assert_eq!(template.template, Some(true));
    assert_eq!(template.name.as_deref(), Some("debian-12-template"));
    let list = root.qemu_list(NODE).await.expect("qemu list");
    assert!(
        list.iter()
            .any(|v| v.vmid == 9000 && v.template == Some(true))
    );
}

// ------------------------------------------------------------------------------------------------
// VM lifecycle

fn full_vm(uuid: &str) -> VmConfig {
    VmConfig {
        name: Some("web-1".into()),
        cores: Some(2),
        sockets: Some(1),
        cpu: Some("x86-64-v2-AES".into()),
        memory_mib: Some(2048),
        balloon_mib: Some(1024),
        scsihw: Some(ScsiHw::VirtioScsiSingle),
        ciuser: Some("ops".into()),
        sshkeys: vec![SSH_KEY.into()],
        nameservers: vec!["192.0.2.53".parse().expect("ip")],
        searchdomain: Some("example.com".into()),
        boot_order: vec!["scsi0".into(), "ide2".into(), "net0".into()],
        ostype: Some("l26".into()),
        agent: Some(AgentConfig {
            enabled: true,
            fstrim_cloned_disks: None,
        }),
        tags: vec!["pve-operator".into(), "team-a".into()],
        description: Some("owned by pve-operator\nuid: 1234".into()),
        smbios_uuid: Some(uuid.into()),
        onboot: Some(false),
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::scsi(0).expect("scsi0"),
        Drive::Disk(
            Disk::new("local-lvm", 8.0)
                .discard(true)
                .iothread(true)
                .ssd(true),
        ),
    )
    .drive(
        DiskSlot::virtio(1).expect("virtio1"),
        Drive::Disk(Disk::new("local-lvm", 2.0)),
    )
    .drive(DiskSlot::ide(2).expect("ide2"), Drive::CdromIso(ISO.into()))
    .drive(
        DiskSlot::ide(0).expect("ide0"),
        Drive::CloudInit {
            storage: "local-lvm".into(),
        },
    )
    .nic(
        0,
        Nic::new(NicModel::Virtio, "vmbr0").tag(10).firewall(true),
    )
    .nic(
        1,
        Nic::new(NicModel::E1000, "vmbr1").macaddr("BC:24:11:00:00:01"),
    )
    .ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Static {
                cidr: "192.0.2.10/24".into(),
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            }),
            ipv6: None,
        },
    )
}

#[tokio::test]
async fn vm_lifecycle_create_configure_resize_power_agent_and_purge() {
    // A guest that boots for a minute of the simulator's clock: the test decides when it has
    // booted (by advancing that clock), not how fast this machine runs the steps in between.
    let mut cluster = fast_cluster();
    cluster.agent_boot_delay_ms = 60_000;
    let h = Harness::start_with(cluster).await;
    let root = h.root();
    let uuid = "5b0f6a9e-3c2d-4e1f-9a8b-7c6d5e4f3a2b";

    let vmid = root.next_vmid().await.expect("nextid");
    assert_eq!(vmid, 100, "the first free VMID");
    let upid = create_and_wait(&root, vmid, &full_vm(uuid)).await;
    assert_eq!(upid.task_type, "qmcreate");
    assert_eq!(upid.id, vmid.to_string());
    assert_eq!(upid.node, NODE);

    // The config as Proxmox rewrote it.
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_eq!(cfg.digest.len(), 40, "SHA-1 digest: {cfg:?}");
    assert!(cfg.digest.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(cfg.lock(), None);
    assert_eq!(cfg.get("name"), Some("web-1"));
    assert_eq!(cfg.get_u64("cores"), Some(2));
    assert_eq!(cfg.memory_mib(), Some(2048));
    assert_eq!(cfg.get_u64("balloon"), Some(1024));
    assert_eq!(cfg.get("scsihw"), Some("virtio-scsi-single"));
    assert_eq!(cfg.get("ostype"), Some("l26"));
    assert_eq!(cfg.get("boot"), Some("order=scsi0;ide2;net0"));
    assert_eq!(cfg.get("ciuser"), Some("ops"));
    assert_eq!(cfg.get("ipconfig0"), Some("ip=192.0.2.10/24,gw=192.0.2.1"));
    assert_eq!(cfg.get("searchdomain"), Some("example.com"));
    assert_eq!(cfg.smbios_uuid().as_deref(), Some(uuid));
    assert_eq!(cfg.tags(), ["pve-operator", "team-a"]);
    assert_eq!(
        cfg.get("description"),
        Some("owned by pve-operator\nuid: 1234")
    );
    let keys = percent_decode(cfg.get("sshkeys").expect("sshkeys stored"));
    assert_eq!(keys.trim_end(), SSH_KEY, "sshkeys round-trip URL-encoded");
    let nics = cfg.nics();
    assert_eq!(nics[&0].model, NicModel::Virtio);
    assert_eq!(nics[&0].bridge, "vmbr0");
    assert_eq!(nics[&0].tag, Some(10));
    assert_eq!(nics[&0].firewall, Some(true));
    let mac0 = nics[&0].macaddr.clone().expect("a generated MAC");
    assert!(mac0.starts_with("BC:24:11:"), "Proxmox OUI: {mac0}");
    assert_eq!(nics[&1].macaddr.as_deref(), Some("BC:24:11:00:00:01"));
    let drives = cfg.drives();
    let slot = |s: &str| DiskSlot::parse(s).expect("slot");
    assert_eq!(
        drives[&slot("scsi0")],
        (format!("local-lvm:vm-{vmid}-disk-0"), Some("8G".to_owned()))
    );
    assert_eq!(drives[&slot("virtio1")].1.as_deref(), Some("2G"));
    assert_eq!(drives[&slot("ide2")].0, ISO);
    assert_eq!(
        drives[&slot("ide0")].0,
        format!("local-lvm:vm-{vmid}-cloudinit")
    );
    let scsi0 = cfg.get("scsi0").expect("scsi0");
    for opt in ["discard=on", "iothread=1", "ssd=1"] {
        assert!(scsi0.contains(opt), "{scsi0} keeps {opt}");
    }

    // Optimistic locking: an update with the current digest passes, a stale digest does not.
    let stale = cfg.digest.clone();
    root.qemu_update_sync(
        NODE,
        vmid,
        &VmConfig {
            cores: Some(4),
            ..VmConfig::default()
        },
        &ConfigUpdate {
            digest: Some(stale.clone()),
            ..ConfigUpdate::default()
        },
    )
    .await
    .expect("update with the current digest");
    let e = expect_err(
        root.qemu_update_sync(
            NODE,
            vmid,
            &VmConfig {
                cores: Some(8),
                ..VmConfig::default()
            },
            &ConfigUpdate {
                digest: Some(stale.clone()),
                ..ConfigUpdate::default()
            },
        )
        .await,
        "update with a stale digest",
    );
    assert!(matches!(e, PveError::DigestMismatch { .. }), "{e:?}");
    assert!(!e.is_retryable(), "re-read, don't retry blindly");
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_ne!(cfg.digest, stale, "the digest changed with the write");
    assert_eq!(
        cfg.get_u64("cores"),
        Some(4),
        "the stale update did nothing"
    );

    // Async update (POST, a qmconfig task) deleting a key.
    let task = root
        .qemu_update_async(
            NODE,
            vmid,
            &VmConfig {
                description: Some("updated".into()),
                ..VmConfig::default()
            },
            &ConfigUpdate {
                delete: vec!["net1".into()],
                digest: Some(cfg.digest.clone()),
                ..ConfigUpdate::default()
            },
        )
        .await
        .expect("async update");
    let task = task.expect("PVE 8 returns a qmconfig UPID");
    assert_eq!(task.task_type, "qmconfig");
    run(&root, task).await;
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_eq!(cfg.get("description"), Some("updated"));
    assert_eq!(cfg.get("net1"), None);

    // Resize is a task in PVE 8.
    let task = root
        .qemu_resize(NODE, vmid, slot("scsi0"), DiskSize::GrowGib(2), None)
        .await
        .expect("resize")
        .expect("a resize UPID");
    assert_eq!(task.task_type, "resize");
    run(&root, task).await;
    let drives = root.qemu_config(NODE, vmid).await.expect("config").drives();
    assert_eq!(drives[&slot("scsi0")].1.as_deref(), Some("10G"));

    // Power on; the agent reports the cloud-init address on the NIC's MAC.
    let status = root.qemu_status(NODE, vmid).await.expect("status");
    assert_eq!(status.status, "stopped");
    run(&root, root.qemu_start(NODE, vmid).await.expect("start")).await;
    let status = root.qemu_status(NODE, vmid).await.expect("status");
    assert!(status.is_running(), "{status:?}");
    assert_eq!(status.agent, Some(true));
    assert!(status.pid.is_some());
    // While the guest boots, PVE answers that the agent is not running: retry later.
    let booting = root
        .qemu_agent_network(NODE, vmid)
        .await
        .expect_err("the agent does not answer right after start");
    assert!(
        booting.is_retryable(),
        "a booting guest's agent is worth waiting for: {booting}"
    );
    assert!(
        booting
            .to_string()
            .contains("QEMU guest agent is not running"),
        "{booting}"
    );
    h.sim.with_state(|s| s.clock_offset_ms += 61_000); // the guest has booted
    let ifaces = root
        .qemu_agent_network(NODE, vmid)
        .await
        .expect("agent network-get-interfaces");
    let eth = ifaces
        .iter()
        .find(|i| {
            i.hardware_address
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(&mac0))
        })
        .unwrap_or_else(|| panic!("an interface with MAC {mac0}: {ifaces:?}"));
    assert!(
        eth.ip_addresses
            .iter()
            .any(|a| a.ip_address == "192.0.2.10" && a.prefix == Some(24)),
        "{eth:?}"
    );

    // A running VM cannot be deleted.
    let e = expect_err(
        root.qemu_delete(NODE, vmid, DeleteOptions::default()).await,
        "delete a running VM",
    );
    assert!(matches!(e, PveError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("is running - destroy failed"), "{e}");

    // Memory is not hot-pluggable by default: the change stays pending until the VM stops.
    root.qemu_update_sync(
        NODE,
        vmid,
        &VmConfig {
            memory_mib: Some(4096),
            ..VmConfig::default()
        },
        &ConfigUpdate::default(),
    )
    .await
    .expect("update of a running VM");
    let pending = root.qemu_pending(NODE, vmid).await.expect("pending");
    let mem = pending
        .iter()
        .find(|p| p.key == "memory")
        .expect("memory in the pending list");
    assert_eq!(mem.value.as_deref(), Some("2048"));
    assert_eq!(mem.pending.as_deref(), Some("4096"));
    assert_eq!(
        root.qemu_config(NODE, vmid)
            .await
            .expect("cfg")
            .memory_mib(),
        Some(4096),
        "config shows pending values"
    );
    assert_eq!(
        root.qemu_config_current(NODE, vmid)
            .await
            .expect("current")
            .memory_mib(),
        Some(2048),
        "current=1 shows the active value"
    );

    run(
        &root,
        root.qemu_shutdown(
            NODE,
            vmid,
            &ShutdownOptions {
                timeout: Some(30),
                force_stop: Some(true),
            },
        )
        .await
        .expect("shutdown"),
    )
    .await;
    assert_eq!(
        root.qemu_status(NODE, vmid).await.expect("status").status,
        "stopped"
    );
    assert_eq!(
        root.qemu_config_current(NODE, vmid)
            .await
            .expect("current")
            .memory_mib(),
        Some(4096),
        "pending applied at shutdown"
    );
    assert!(
        root.qemu_pending(NODE, vmid)
            .await
            .expect("pending")
            .iter()
            .all(|p| p.pending.is_none()),
        "nothing pending after shutdown"
    );

    run(&root, root.qemu_start(NODE, vmid).await.expect("start")).await;
    run(
        &root,
        root.qemu_stop(NODE, vmid, &StopOptions::default())
            .await
            .expect("stop"),
    )
    .await;
    assert_eq!(
        root.qemu_status(NODE, vmid).await.expect("status").status,
        "stopped"
    );

    // Delete with purge; the VM is gone everywhere.
    let task = root
        .qemu_delete(NODE, vmid, DeleteOptions::default())
        .await
        .expect("delete");
    assert_eq!(task.task_type, "qmdestroy");
    run(&root, task).await;
    let e = expect_err(root.qemu_config(NODE, vmid).await, "config of a deleted VM");
    assert!(matches!(e, PveError::NotFound { .. }), "{e:?}");
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    assert!(vms.iter().all(|r| r.vmid != Some(vmid)), "{vms:?}");
    assert!(root.vmid_is_free(vmid).await.expect("nextid?vmid"));
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("UTF-8 after decoding")
        .into_owned()
}

#[tokio::test]
async fn clones_from_the_template_are_linked_or_full_and_tagged_in_the_inventory() {
    let h = Harness::start().await;
    let root = h.root();
    let linked_id = root.next_vmid().await.expect("nextid");
    let task = root
        .qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: linked_id,
                name: Some("linked-1".into()),
                full: false,
                storage: None,
                target: None,
                pool: None,
                description: None,
            },
        )
        .await
        .expect("linked clone");
    assert_eq!(task.task_type, "qmclone");
    assert_eq!(task.id, "9000", "a clone task's id is the SOURCE vmid");
    run(&root, task).await;
    let full_id = root.next_vmid().await.expect("nextid");
    assert_ne!(full_id, linked_id);
    let task = root
        .qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: full_id,
                name: Some("full-1".into()),
                full: true,
                storage: Some("local-lvm".into()),
                target: None,
                pool: None,
                description: None,
            },
        )
        .await
        .expect("full clone");
    run(&root, task).await;

    let scsi0 = |cfg: &pve_client::api::vmconfig::VmConfigView| {
        cfg.drives()[&DiskSlot::scsi(0).expect("scsi0")].0.clone()
    };
    let linked = root.qemu_config(NODE, linked_id).await.expect("linked cfg");
    assert_eq!(
        scsi0(&linked),
        format!("local-lvm:base-9000-disk-0/vm-{linked_id}-disk-0")
    );
    assert_eq!(linked.get("name"), Some("linked-1"));
    let full = root.qemu_config(NODE, full_id).await.expect("full cfg");
    assert_eq!(scsi0(&full), format!("local-lvm:vm-{full_id}-disk-0"));
    let template = root.qemu_config(NODE, 9000).await.expect("template cfg");
    assert_ne!(
        full.smbios_uuid(),
        template.smbios_uuid(),
        "a clone gets its own SMBIOS uuid"
    );

    // Tag the clone (updates normalise tags) and find it in the inventory by tag.
    root.qemu_update_sync(
        NODE,
        full_id,
        &VmConfig {
            tags: vec!["Team-B".into(), "pve-operator".into()],
            ..VmConfig::default()
        },
        &ConfigUpdate::default(),
    )
    .await
    .expect("tag update");
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let tagged: Vec<u32> = vms
        .iter()
        .filter(|r| r.has_tag("pve-operator"))
        .filter_map(|r| r.vmid)
        .collect();
    assert_eq!(tagged, [full_id]);
    let entry = vms.iter().find(|r| r.vmid == Some(full_id)).expect("entry");
    assert_eq!(entry.tags.as_deref(), Some("pve-operator;team-b"));

    // Templates cannot start: the task fails.
    let e = expect_err(
        root.wait_task(
            &root.qemu_start(NODE, 9000).await.expect("start"),
            &fast_wait(),
        )
        .await,
        "starting a template",
    );
    assert!(matches!(e, PveError::TaskFailed { .. }), "{e:?}");
}

// ------------------------------------------------------------------------------------------------
// Tasks

#[tokio::test]
async fn task_status_log_and_list_describe_a_finished_task() {
    let h = Harness::start().await;
    let root = h.root();
    let upid = create_and_wait(&root, 100, &small_vm("tasks-1")).await;
    let status = root.task_status(&upid).await.expect("task status");
    assert_eq!(status.upid, upid.to_string());
    assert_eq!(status.task_type, "qmcreate");
    assert_eq!(status.id, "100");
    assert_eq!(status.user, "root@pam");
    assert!(!status.is_running());
    assert_eq!(status.exit_status(), Some(ExitStatus::Ok));
    assert_eq!(u64::from(upid.pid as u32), status.pid);

    let log = root.task_log(&upid, 0, 0).await.expect("whole log");
    let total = log.total.expect("total");
    assert_eq!(total, log.lines.len() as u64);
    assert_eq!(log.lines.last().map(|l| l.t.as_str()), Some("TASK OK"));
    assert_eq!(log.lines[0].n, 1);
    let tail = root.task_log_tail(&upid, 1).await.expect("tail");
    assert_eq!(tail, ["TASK OK"]);

    let list = root
        .tasks(
            NODE,
            &TaskListQuery {
                vmid: Some(100),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("task list");
    let entry = list
        .iter()
        .find(|t| t.upid == upid.to_string())
        .expect("the create task is listed");
    assert_eq!(entry.status.as_deref(), Some("OK"));
    assert!(entry.endtime.is_some());
    let only_starts = root
        .tasks(
            NODE,
            &TaskListQuery {
                typefilter: Some("qmstart".into()),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("filtered list");
    assert!(only_starts.is_empty(), "{only_starts:?}");
}

#[tokio::test]
async fn a_start_beyond_the_node_memory_fails_its_task_with_the_log_tail() {
    let h = Harness::start().await;
    let root = h.root();
    let mut vm = small_vm("too-big");
    vm.memory_mib = Some(128 * 1024); // the node has 64 GiB
    create_and_wait(&root, 100, &vm).await;
    let upid = root.qemu_start(NODE, 100).await.expect("start is accepted");
    let e = expect_err(root.wait_task(&upid, &fast_wait()).await, "start task");
    match &e {
        PveError::TaskFailed {
            upid: failed,
            exit_status,
            log_tail,
            cause,
        } => {
            assert_eq!(failed, &upid.to_string());
            assert_eq!(exit_status, "start failed: QEMU exited with code 1");
            let last = log_tail.last().expect("a log tail");
            assert_eq!(last, &format!("TASK ERROR: {exit_status}"));
            assert!(
                log_tail
                    .iter()
                    .any(|l| l.contains("Cannot allocate memory")),
                "the log tail says why: {log_tail:?}"
            );
            assert_eq!(*cause, ErrorKind::TaskFailed);
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    assert!(!e.is_retryable(), "not enough memory is permanent");
    assert!(e.to_string().contains("Cannot allocate memory"), "{e}");
    let failed = root
        .tasks(
            NODE,
            &TaskListQuery {
                errors: Some(true),
                ..TaskListQuery::default()
            },
        )
        .await
        .expect("failed tasks");
    assert!(
        failed.iter().any(|t| t.upid == upid.to_string()),
        "{failed:?}"
    );
}

#[tokio::test]
async fn an_injected_lock_timeout_in_a_task_is_a_retryable_task_failure() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("locky")).await;
    h.faults(json!([{
        "path": "/nodes/{node}/qemu/{vmid}/status/start",
        "max_count": 1,
        "fault": {"kind": "task_failure",
                  "message": "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"}
    }]))
    .await;
    let upid = root.qemu_start(NODE, 100).await.expect("start accepted");
    let e = expect_err(root.wait_task(&upid, &fast_wait()).await, "start task");
    assert!(
        matches!(
            &e,
            PveError::TaskFailed {
                cause: ErrorKind::LockTimeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // The retry the caller decides on succeeds.
    run(&root, root.qemu_start(NODE, 100).await.expect("start")).await;
}

#[tokio::test]
async fn unknown_task_is_not_found() {
    let h = Harness::start().await;
    let root = h.root();
    let upid: Upid = "UPID:pve:00001234:00005678:6B000000:qmstart:100:root@pam:"
        .parse()
        .expect("a well-formed UPID");
    let e = expect_err(root.task_status(&upid).await, "status of an unknown task");
    assert!(matches!(e, PveError::NotFound { .. }), "{e:?}");
}

// ------------------------------------------------------------------------------------------------
// Errors, in both PVE 8 error styles

async fn error_kinds_as_the_server_produces_them(json_error_message: bool) {
    let mut cfg = fast_cluster();
    cfg.json_error_message = json_error_message;
    let h = Harness::start_with(cfg).await;
    let root = h.root();

    let e = expect_err(root.qemu_config(NODE, 999).await, "missing VM");
    assert!(matches!(&e, PveError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("Configuration file 'nodes/pve/qemu-server/999.conf' does not exist"),
        "{e}"
    );

    // PermissionDenied with path and privilege: a token that may only audit.
    let secret = h
        .create_user(
            &root,
            "auditor@pve",
            "auditor-password",
            &[("/", "PVEAuditor")],
            Some("ro"),
        )
        .await
        .expect("secret");
    let auditor = h.token_client("auditor@pve!ro", &secret);
    auditor
        .qemu_config(NODE, 9000)
        .await
        .expect("the auditor may read");
    let e = expect_err(
        auditor.qemu_start(NODE, 9000).await,
        "start without VM.PowerMgmt",
    );
    match &e {
        PveError::PermissionDenied {
            path, privileges, ..
        } => {
            assert_eq!(path.as_deref(), Some("/vms/9000"));
            assert_eq!(privileges, &["VM.PowerMgmt".to_owned()]);
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(!e.is_retryable());
    let e = expect_err(
        auditor
            .qemu_create(NODE, 120, &small_vm("nope"), false)
            .await,
        "create without VM.Allocate",
    );
    assert!(matches!(&e, PveError::PermissionDenied { .. }), "{e:?}");

    // InvalidParameters with Proxmox's per-parameter messages.
    let e = expect_err(
        root.qemu_create(
            NODE,
            120,
            &VmConfig::new().drive(
                DiskSlot::scsi(0).expect("scsi0"),
                Drive::Disk(Disk::new("local", 4.0)),
            ),
            false,
        )
        .await,
        "a disk on an ISO-only storage",
    );
    match &e {
        PveError::InvalidParameters { errors, .. } => {
            assert_eq!(
                errors.get("storage").map(String::as_str),
                Some("storage 'local' does not support vm images"),
                "{errors:?}"
            );
        }
        other => panic!("expected InvalidParameters, got {other:?}"),
    }
    let e = expect_err(
        Harness::raw(
            &root,
            Method::Post,
            "/nodes/{node}/qemu",
            &[("node", NODE)],
            &[("vmid", "120"), ("cores", "many"), ("frobnicate", "1")],
        )
        .await,
        "an untyped create with bad parameters",
    );
    match &e {
        PveError::InvalidParameters { message, errors } => {
            assert_eq!(message, "Parameter verification failed.");
            let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
            assert_eq!(keys, ["cores", "frobnicate"], "{errors:?}");
            assert!(
                errors["cores"].contains("type check ('integer') failed"),
                "{errors:?}"
            );
        }
        other => panic!("expected InvalidParameters, got {other:?}"),
    }
    assert!(!e.is_retryable());

    // AlreadyExists: a taken VMID, in create and in nextid?vmid.
    let e = expect_err(
        root.qemu_create(NODE, 9000, &small_vm("dup"), false).await,
        "create on a taken VMID",
    );
    assert!(matches!(&e, PveError::AlreadyExists { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("unable to create VM 9000 - VM 9000 already exists on node 'pve'"),
        "{e}"
    );
    assert!(!root.vmid_is_free(9000).await.expect("nextid?vmid=9000"));

    // Conflict: reboot of a stopped VM.
    let e = expect_err(root.qemu_reboot(NODE, 9000).await, "reboot a stopped VM");
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");

    // 5xx and proxy errors: GETs are retried, writes never.
    h.faults(json!([
        {"method": "GET", "path": "/version", "max_count": 2,
         "fault": {"kind": "error", "status": 500, "message": "cluster not ready - no quorum?"}},
        {"method": "POST", "path": "/nodes/{node}/qemu", "max_count": 1,
         "fault": {"kind": "error", "status": 500, "message": "cluster not ready - no quorum?"}},
        {"method": "GET", "path": "/cluster/resources",
         "fault": {"kind": "proxy", "status": 596, "reason": "Connection timed out"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1,
         "fault": {"kind": "lock_timeout"}}
    ]))
    .await;
    h.reset_stats().await;
    root.version()
        .await
        .expect("GET /version succeeds on the third attempt");
    assert_eq!(h.requests_to("GET /version").await, 3, "two retries");

    let e = expect_err(
        root.qemu_create(NODE, 130, &small_vm("quorum"), false)
            .await,
        "create during a 500",
    );
    assert!(
        matches!(&e, PveError::Server { status: 500, message } if message == "cluster not ready - no quorum?"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("POST /nodes/{node}/qemu").await,
        1,
        "never resent"
    );

    let e = expect_err(
        root.cluster_resources(None).await,
        "resources behind a failing proxy",
    );
    assert!(
        matches!(&e, PveError::Server { status: 596, message } if message == "Connection timed out"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("GET /cluster/resources").await,
        4,
        "max_attempts GETs"
    );

    let e = expect_err(
        root.qemu_update_sync(
            NODE,
            9000,
            &VmConfig {
                description: Some("x".into()),
                ..VmConfig::default()
            },
            &ConfigUpdate::default(),
        )
        .await,
        "update during a lock timeout",
    );
    assert!(matches!(&e, PveError::LockTimeout { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout"),
        "{e}"
    );
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("PUT /nodes/{node}/qemu/{vmid}/config").await,
        1,
        "a PUT is never resent"
    );
    let fired: Vec<u64> = serde_json::from_value(
        h.control(reqwest::Method::GET, "/faults", None).await["fired"].clone(),
    )
    .expect("fired counts");
    assert_eq!(fired, [2, 1, 4, 1]);

    // The message really came from where this style puts it.
    let raw = h
        .control
        .get(format!("{}/nodes/pve/qemu/999/config", h.sim.url()))
        .header(
            "Authorization",
            format!("PVEAPIToken=auditor@pve!ro={secret}"),
        )
        .send()
        .await
        .expect("raw request");
    assert_eq!(raw.status().as_u16(), 500);
    let body: Value = raw.json().await.expect("JSON error body");
    assert_eq!(
        body.get("message").is_some(),
        json_error_message,
        "error body of this style: {body}"
    );
}

#[tokio::test]
async fn error_kinds_with_the_message_in_the_json_body() {
    error_kinds_as_the_server_produces_them(true).await;
}

#[tokio::test]
async fn error_kinds_with_the_message_only_in_the_reason_phrase() {
    error_kinds_as_the_server_produces_them(false).await;
}

#[tokio::test]
async fn a_running_create_task_holds_the_config_lock_and_updates_time_out_retryably() {
    let mut cfg = fast_cluster();
    cfg.task_durations_ms.create = 60_000; // the create task holds the lock for the whole test
    cfg.flock_timeout_ms = 300; // PVE waits 10 s for the flock
    let h = Harness::start_with(cfg).await;
    let root = h.root();
    let upid = root
        .qemu_create(NODE, 100, &small_vm("creating"), false)
        .await
        .expect("create accepted");
    let cfg = root
        .qemu_config(NODE, 100)
        .await
        .expect("config while creating");
    assert_eq!(cfg.lock(), Some("create"));
    assert_eq!(
        root.qemu_status(NODE, 100)
            .await
            .expect("status")
            .lock
            .as_deref(),
        Some("create")
    );
    let e = expect_err(
        root.qemu_update_sync(
            NODE,
            100,
            &VmConfig {
                cores: Some(2),
                ..VmConfig::default()
            },
            &ConfigUpdate::default(),
        )
        .await,
        "update while the create task holds the lock",
    );
    assert!(matches!(&e, PveError::LockTimeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("PUT /nodes/{node}/qemu/{vmid}/config").await,
        1,
        "the write was not resent"
    );
    assert!(root.task_status(&upid).await.expect("status").is_running());
    let e = expect_err(
        root.wait_task(
            &upid,
            &WaitOptions {
                timeout: Some(Duration::from_millis(200)),
                ..fast_wait()
            },
        )
        .await,
        "waiting past the deadline",
    );
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_vm_with_a_config_lock_refuses_updates_and_starts_with_locked() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("backed-up")).await;
    // A backup job has locked the VM (set up directly in the simulator's state).
    h.sim.with_state(|s| {
        s.vms.get_mut(&100).expect("VM 100").lock = Some("backup".into());
    });
    let cfg = root.qemu_config(NODE, 100).await.expect("config");
    assert_eq!(cfg.lock(), Some("backup"));
    let e = expect_err(
        root.qemu_update_sync(
            NODE,
            100,
            &VmConfig {
                cores: Some(2),
                ..VmConfig::default()
            },
            &ConfigUpdate::default(),
        )
        .await,
        "update of a locked VM",
    );
    assert!(
        matches!(&e, PveError::Locked { lock: Some(l), .. } if l == "backup"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let upid = root.qemu_start(NODE, 100).await.expect("start accepted");
    let e = expect_err(root.wait_task(&upid, &fast_wait()).await, "start task");
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, cause: ErrorKind::Locked, .. }
            if exit_status == "VM is locked (backup)"),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn unknown_paths_nodes_and_an_exhausted_vmid_range_are_typed() {
    let mut cfg = fast_cluster();
    cfg.nextid.lower = 100;
    cfg.nextid.upper = 101;
    let h = Harness::start_with(cfg).await;
    let root = h.root();
    let e = expect_err(
        Harness::raw(
            &root,
            Method::Get,
            "/nodes/{node}/frobnicate",
            &[("node", NODE)],
            &[],
        )
        .await,
        "an endpoint PVE does not have",
    );
    assert!(matches!(&e, PveError::NotImplemented { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let e = expect_err(root.node_status("pve-nowhere").await, "an unknown node");
    assert!(matches!(&e, PveError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("hostname lookup 'pve-nowhere' failed"),
        "{e}"
    );

    assert_eq!(root.next_vmid().await.expect("the only free id"), 100);
    create_and_wait(&root, 100, &small_vm("last-one")).await;
    let e = expect_err(root.next_vmid().await, "nextid with the range used up");
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("unable to get any free VMID"), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn dropped_connections_and_slow_answers_retry_reads_but_never_writes() {
    let h = Harness::start().await;
    let root = h.root();
    root.version().await.expect("login");
    h.faults(json!([
        {"method": "GET", "path": "/nodes", "max_count": 1, "fault": {"kind": "drop"}},
        {"method": "POST", "path": "/nodes/{node}/qemu", "max_count": 1, "fault": {"kind": "drop"}},
        {"method": "GET", "path": "/cluster/nextid", "fault": {"kind": "latency", "ms": 5000}}
    ]))
    .await;
    h.reset_stats().await;
    root.nodes()
        .await
        .expect("GET /nodes after one dropped connection");
    assert_eq!(h.requests_to("GET /nodes").await, 2, "one retry");

    let e = expect_err(
        root.qemu_create(NODE, 100, &small_vm("dropped"), false)
            .await,
        "create on a dropped connection",
    );
    assert_eq!(e.kind(), ErrorKind::Transport, "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("POST /nodes/{node}/qemu").await,
        1,
        "a write whose answer was lost is not resent blindly"
    );

    let impatient = h.password_client(
        "root@pam",
        ROOT_PW,
        ClientOptions {
            timeout: Duration::from_millis(400),
            retry: RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(5),
            },
            ..ClientOptions::default()
        },
    );
    // Log in and open the connection first, so that only the slow answer can time out.
    impatient.version().await.expect("login");
    let e = expect_err(impatient.next_vmid().await, "a slow nextid");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(
        h.requests_to("GET /cluster/nextid").await,
        2,
        "retried once"
    );
}

const SSH_KEY_2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwE9KvaA54UMTs1cKEWCUiG5DMQeNSThIQU0upQWnrL second@example";

#[tokio::test]
async fn uefi_sata_empty_cdrom_ipv6_and_pool_options_round_trip() {
    let h = Harness::start().await;
    let root = h.root();
    Harness::raw(&root, Method::Post, "/pools", &[], &[("poolid", "team-a")])
        .await
        .expect("root creates a pool");
    let vm = VmConfig {
        name: Some("uefi-1".into()),
        memory_mib: Some(1024),
        bios: Some(Bios::Ovmf),
        machine: Some("q35".into()),
        efidisk: Some(EfiDisk {
            storage: "local-lvm".into(),
            efitype_4m: true,
            pre_enrolled_keys: Some(true),
        }),
        cipassword: Some(pve_client::Secret::new("cloud-init-pw")),
        sshkeys: vec![SSH_KEY.into(), SSH_KEY_2.into()],
        nameservers: vec![
            "192.0.2.53".parse().expect("ip"),
            "2001:db8::53".parse().expect("ip"),
        ],
        pool: Some("team-a".into()),
        onboot: Some(true),
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::sata(0).expect("sata0"),
        Drive::Disk(
            Disk::new("local-lvm", 4.5)
                .cache(CacheMode::Writeback)
                .backup(false),
        ),
    )
    .drive(
        DiskSlot::virtio(0).expect("virtio0"),
        Drive::Disk(Disk::new("local-lvm", 1.0).iothread(true).discard(true)),
    )
    .drive(DiskSlot::ide(2).expect("ide2"), Drive::CdromEmpty)
    .nic(0, Nic::new(NicModel::Vmxnet3, "vmbr1"))
    .ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Dhcp),
            ipv6: Some(Ipv6Config::Static {
                cidr: "2001:db8::10/64".into(),
                gateway: Some("2001:db8::1".parse().expect("ip")),
            }),
        },
    )
    .ipconfig(
        1,
        IpConfig {
            ipv4: None,
            ipv6: Some(Ipv6Config::Auto),
        },
    );
    create_and_wait(&root, 100, &vm).await;
    let cfg = root.qemu_config(NODE, 100).await.expect("config");
    assert_eq!(cfg.get("bios"), Some("ovmf"));
    assert_eq!(cfg.get("machine"), Some("q35"));
    assert_eq!(cfg.get("onboot"), Some("1"));
    assert_eq!(cfg.get("cipassword"), Some("**********"), "PVE masks it");
    assert_eq!(cfg.get("nameserver"), Some("192.0.2.53 2001:db8::53"));
    assert_eq!(cfg.get("ide2"), Some("none,media=cdrom"));
    assert_eq!(
        cfg.get("ipconfig0"),
        Some("ip=dhcp,ip6=2001:db8::10/64,gw6=2001:db8::1")
    );
    assert_eq!(cfg.get("ipconfig1"), Some("ip6=auto"));
    let keys = percent_decode(cfg.get("sshkeys").expect("sshkeys"));
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys, [SSH_KEY, SSH_KEY_2]);
    let efi = cfg.get("efidisk0").expect("efidisk0");
    assert!(
        efi.starts_with("local-lvm:vm-100-disk-") && efi.contains("efitype=4m"),
        "{efi}"
    );
    assert!(efi.contains("pre-enrolled-keys=1"), "{efi}");
    let sata = cfg.get("sata0").expect("sata0");
    for opt in ["backup=0", "cache=writeback", "size=4608M"] {
        assert!(sata.contains(opt), "{sata} has {opt}");
    }
    let virtio = cfg.get("virtio0").expect("virtio0");
    assert!(
        virtio.contains("iothread=1") && virtio.contains("discard=on"),
        "{virtio}"
    );
    assert_eq!(cfg.nics()[&0].model, NicModel::Vmxnet3);
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let entry = vms.iter().find(|r| r.vmid == Some(100)).expect("VM 100");
    assert_eq!(entry.pool.as_deref(), Some("team-a"));
    assert_eq!(entry.name.as_deref(), Some("uefi-1"));
    assert_eq!(entry.maxmem, Some(1024 << 20));
}

#[tokio::test]
async fn a_least_privilege_token_is_told_which_privilege_is_missing_where() {
    let h = Harness::start().await;
    let root = h.root();
    let secret = h
        .create_user(
            &root,
            "omni@pve",
            "omni-password",
            &[
                ("/vms", "PVEVMAdmin"),
                ("/storage/local-lvm", "PVEDatastoreUser"),
            ],
            Some("omni-provider"),
        )
        .await
        .expect("secret");
    let omni = h.token_client("omni@pve!omni-provider", &secret);
    let perms = omni
        .permissions(Some("/vms/100"), None)
        .await
        .expect("own permissions");
    assert!(perms.has("/vms/100", "VM.Allocate"), "{perms:?}");
    let perms = omni
        .permissions(Some("/sdn/zones/localnetwork/vmbr0"), None)
        .await
        .expect("own permissions");
    assert!(
        !perms.has("/sdn/zones/localnetwork/vmbr0", "SDN.Use"),
        "{perms:?}"
    );

    // No SDN.Use on the bridge: the NIC is refused with path and privilege.
    let vm = small_vm("least-1");
    let e = expect_err(
        omni.qemu_create(NODE, 100, &vm, false).await,
        "NIC without SDN.Use",
    );
    match &e {
        PveError::PermissionDenied {
            path, privileges, ..
        } => {
            assert_eq!(
                path.as_deref(),
                Some("/sdn/zones/localnetwork/vmbr0"),
                "{e:?}"
            );
            assert_eq!(privileges, &["SDN.Use".to_owned()]);
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains("missing SDN.Use on /sdn/zones/localnetwork/vmbr0"),
        "{e}"
    );

    // An unknown pool is reported as such.
    let in_pool = VmConfig {
        pool: Some("nope".into()),
        ..small_vm("least-2")
    };
    let e = expect_err(
        omni.qemu_create(NODE, 100, &in_pool, false).await,
        "unknown pool",
    );
    assert!(
        matches!(&e, PveError::PermissionDenied { path: None, detail: Some(d), .. }
            if d == "pool 'nope' does not exist"),
        "{e:?}"
    );

    // With SDN.Use on the bridge (propagating to its VLANs) the same request passes, a
    // tagged NIC included, and the token can run the VM's whole life.
    Harness::raw(
        &root,
        Method::Put,
        "/access/acl",
        &[],
        &[
            ("path", "/sdn/zones/localnetwork/vmbr0"),
            ("roles", "PVESDNUser"),
            ("users", "omni@pve"),
            ("tokens", "omni@pve!omni-provider"),
        ],
    )
    .await
    .expect("grant SDN.Use");
    let tagged = small_vm("least-3").nic(0, Nic::new(NicModel::Virtio, "vmbr0").tag(42));
    create_and_wait(&omni, 100, &tagged).await;
    run(&omni, omni.qemu_start(NODE, 100).await.expect("start")).await;
    run(
        &omni,
        omni.qemu_stop(NODE, 100, &StopOptions::default())
            .await
            .expect("stop"),
    )
    .await;
    // No SDN.Use on vmbr1.
    let e = expect_err(
        omni.qemu_update_sync(
            NODE,
            100,
            &VmConfig::new().nic(1, Nic::new(NicModel::Virtio, "vmbr1")),
            &ConfigUpdate::default(),
        )
        .await,
        "a second NIC on vmbr1",
    );
    assert!(
        matches!(&e, PveError::PermissionDenied { path: Some(p), .. } if p == "/sdn/zones/localnetwork/vmbr1"),
        "{e:?}"
    );
    run(
        &omni,
        omni.qemu_delete(NODE, 100, DeleteOptions::default())
            .await
            .expect("delete"),
    )
    .await;

    // Someone else's task: readable only with Sys.Audit on the node.
    let root_task = create_and_wait(&root, 101, &small_vm("roots")).await;
    let e = expect_err(omni.task_status(&root_task).await, "root's task");
    assert!(
        matches!(&e, PveError::PermissionDenied { path: Some(p), privileges, .. }
            if p == "/nodes/pve" && privileges == &["Sys.Audit".to_owned()]),
        "{e:?}"
    );
}

#[tokio::test]
async fn power_resize_clone_and_agent_edge_cases_have_the_right_kinds() {
    let h = Harness::start().await;
    let root = h.root();
    create_and_wait(&root, 100, &small_vm("edges")).await;
    let scsi0 = DiskSlot::scsi(0).expect("scsi0");

    // Guest agent: not configured is permanent; a stopped VM is a state conflict.
    let e = expect_err(
        root.qemu_agent_network(NODE, 100).await,
        "agent of a stopped VM",
    );
    assert!(matches!(&e, PveError::Conflict { .. }), "{e:?}");
    run(&root, root.qemu_start(NODE, 100).await.expect("start")).await;
    let e = expect_err(
        root.qemu_agent_network(NODE, 100).await,
        "agent not configured",
    );
    assert!(
        matches!(&e, PveError::Conflict { message } if message == "No QEMU guest agent configured"),
        "{e:?}"
    );
    assert!(
        !e.is_retryable(),
        "configuring the agent is the fix, not retrying"
    );

    // Starting a running VM fails in the task, as a conflict; reboot and reset succeed.
    let e = expect_err(
        root.wait_task(
            &root.qemu_start(NODE, 100).await.expect("start"),
            &fast_wait(),
        )
        .await,
        "start of a running VM",
    );
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, cause: ErrorKind::Conflict, .. }
            if exit_status == "VM 100 already running"),
        "{e:?}"
    );
    run(&root, root.qemu_reboot(NODE, 100).await.expect("reboot")).await;
    run(&root, root.qemu_reset(NODE, 100).await.expect("reset")).await;
    run(
        &root,
        root.qemu_stop(NODE, 100, &StopOptions::default())
            .await
            .expect("stop"),
    )
    .await;
    // Stopping a stopped VM is fine.
    run(
        &root,
        root.qemu_stop(NODE, 100, &StopOptions::default())
            .await
            .expect("stop again"),
    )
    .await;

    // Resize: absolute sizes grow, shrinking fails in the task, permanently.
    let digest = root.qemu_config(NODE, 100).await.expect("cfg").digest;
    let task = root
        .qemu_resize(NODE, 100, scsi0, DiskSize::AbsoluteGib(3), Some(&digest))
        .await
        .expect("resize")
        .expect("a task");
    run(&root, task).await;
    assert_eq!(
        root.qemu_config(NODE, 100).await.expect("cfg").drives()[&scsi0]
            .1
            .as_deref(),
        Some("3G")
    );
    let task = root
        .qemu_resize(NODE, 100, scsi0, DiskSize::AbsoluteGib(2), None)
        .await
        .expect("resize")
        .expect("a task");
    let e = expect_err(root.wait_task(&task, &fast_wait()).await, "shrink");
    assert!(
        matches!(&e, PveError::TaskFailed { exit_status, .. } if exit_status == "shrinking disks is not supported"),
        "{e:?}"
    );
    assert!(!e.is_retryable());

    // Cloning onto a taken VMID.
    let e = expect_err(
        root.qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: 100,
                name: None,
                full: false,
                storage: None,
                target: None,
                pool: None,
                description: None,
            },
        )
        .await,
        "clone onto VM 100",
    );
    assert!(matches!(&e, PveError::AlreadyExists { .. }), "{e:?}");
}

#[tokio::test]
async fn concurrent_requests_on_an_expired_ticket_share_one_relogin() {
    let h = Harness::start().await;
    let root = h.root();
    h.create_user(
        &root,
        "alice@pve",
        "alice-password",
        &[("/", "PVEAuditor")],
        None,
    )
    .await;
    // The source documents' form: user name and realm given separately.
    let alice = h.client_yaml(
        "  username: alice\n  realm: pve\n  password: \"alice-password\"\n",
        Trust::Fingerprint(h.sim.fingerprint()),
        fast_options(),
    );
    alice
        .version()
        .await
        .expect("login as alice with realm pve");
    assert_eq!(alice.login_count(), 1);
    h.control(
        reqwest::Method::POST,
        "/clock",
        Some(json!({ "advance_secs": 3 * 3600 })),
    )
    .await;
    h.reset_stats().await;
    let calls: Vec<_> = (0..16).map(|_| alice.cluster_resources(None)).collect();
    for r in futures::future::join_all(calls).await {
        r.expect("a request after the ticket expired");
    }
    assert_eq!(
        alice.login_count(),
        2,
        "one re-login for 16 refused requests"
    );
    let stats = h.stats().await;
    assert_eq!(
        stats["requests_by_endpoint"]["POST /access/ticket"].as_u64(),
        Some(1),
        "{stats}"
    );
    assert_eq!(
        stats["requests_by_endpoint"]["GET /cluster/resources"].as_u64(),
        Some(32),
        "each request was refused once and resent once"
    );
    assert_eq!(stats["responses_by_status"]["401"].as_u64(), Some(16));
}
