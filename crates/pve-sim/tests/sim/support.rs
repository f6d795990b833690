//! What every test module shares: starting a simulator ([`start`], [`start_with`],
//! [`start_version`]) with short tasks and the test users of [`USER_CFG`], the minimal Proxmox
//! client [`Api`] (ticket, token or anonymous; runs tasks to completion), raw HTTP/1.1 for what
//! reqwest hides (the reason phrase), a standard VM ([`create_vm`]), and the simulator's own
//! `/_sim/*` endpoints ([`sim_put`], [`sim_get`], [`advance_clock`]).

use std::time::{Duration, Instant};

use pve_sim::config::ClusterConfig;
use pve_sim::version::PveVersion;
use pve_sim::{RunningSim, SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ROOT_PW: &str = "s3cret-root";

pub const USER_CFG: &str = "\
user:root@pam:1:0:::root@example.com:::
user:alice@pve:1:0:::::
user:bob@pve:1:0:::::
user:carol@pve:1:0:::::
role:VMCreator:VM.Allocate,VM.Audit,VM.Config.CPU,VM.Config.Memory,VM.Config.Disk,VM.Config.Network,VM.Config.Options,VM.PowerMgmt:
acl:1:/vms/100:alice@pve:PVEVMUser:
acl:1:/vms:carol@pve:VMCreator:
acl:1:/storage/local-lvm:carol@pve:PVEDatastoreUser:
acl:1:/sdn/zones/localnetwork/vmbr0:carol@pve:PVESDNUser:
user:dave@pve:1:0:::::
pool:dev:development::
acl:1:/pool/dev:dave@pve:PVEVMAdmin:
acl:1:/storage/local-lvm:dave@pve:PVEDatastoreUser:
";

pub fn fast_config() -> ClusterConfig {
    let mut cfg = ClusterConfig::default();
    cfg.task_durations_ms.create = 150;
    cfg.user_cfg = Some(USER_CFG.to_string());
    cfg
}

pub async fn start_with(config: ClusterConfig, insecure_http: bool) -> RunningSim {
    let mut opts = SimOptions::new(ROOT_PW);
    opts.config = config;
    opts.insecure_http = insecure_http;
    SimServer::start(opts).await.expect("simulator starts")
}

pub async fn start() -> RunningSim {
    start_with(fast_config(), false).await
}

/// Starts a simulator over HTTPS with [`fast_config`] and logs in as root.
pub async fn start_root() -> (RunningSim, Api) {
    start_root_with(fast_config()).await
}

/// Starts a simulator over HTTPS with `config` and logs in as root.
pub async fn start_root_with(config: ClusterConfig) -> (RunningSim, Api) {
    let sim = start_with(config, false).await;
    let api = Api::root(&sim).await;
    (sim, api)
}

/// [`fast_config`] simulating `version`.
pub fn config_of(version: PveVersion) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.pve_version = version;
    cfg
}

/// Starts a `version` simulator and logs in as root.
pub async fn start_version(version: PveVersion) -> (RunningSim, Api) {
    start_root_with(config_of(version)).await
}

pub fn http_client(sim: &RunningSim) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_info(true)
        .build()
        .expect("client")
}

#[derive(Clone)]
pub enum Auth {
    None,
    Ticket { ticket: String, csrf: String },
    Token(String),
}

/// A minimal Proxmox API client for the tests.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: Auth,
}

impl Api {
    pub fn anonymous(sim: &RunningSim) -> Self {
        Self {
            http: http_client(sim),
            base: sim.url(),
            auth: Auth::None,
        }
    }

    pub async fn login(sim: &RunningSim, user: &str, password: &str) -> Self {
        let anon = Self::anonymous(sim);
        let (code, body) = anon
            .call(
                Method::POST,
                "/access/ticket",
                &[("username", user), ("password", password)],
            )
            .await;
        assert_eq!(code, 200, "login of {user}: {body}");
        Self {
            auth: Auth::Ticket {
                ticket: body["data"]["ticket"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                csrf: body["data"]["CSRFPreventionToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            },
            ..anon
        }
    }

    pub async fn root(sim: &RunningSim) -> Self {
        Self::login(sim, "root@pam", ROOT_PW).await
    }

    /// Gives `userid` the password `password` (directly in the simulator's state) and logs it in.
    pub async fn login_with_new_password(sim: &RunningSim, userid: &str, password: &str) -> Self {
        sim.with_state(|s| s.access.user_passwd(userid, password))
            .expect("password");
        Self::login(sim, userid, password).await
    }

    /// The ticket of a client that logged in; panics for anonymous and token clients.
    pub fn ticket(&self) -> String {
        match &self.auth {
            Auth::Ticket { ticket, .. } => ticket.clone(),
            _ => panic!("ticket auth expected"),
        }
    }

    pub fn with_token(sim: &RunningSim, value: &str) -> Self {
        Self {
            auth: Auth::Token(value.to_string()),
            ..Self::anonymous(sim)
        }
    }

    pub async fn call(&self, method: Method, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        req = if method == Method::GET || method == Method::DELETE {
            req.query(params)
        } else {
            req.form(params)
        };
        match &self.auth {
            Auth::None => {}
            Auth::Ticket { ticket, csrf } => {
                req = req.header("Cookie", format!("PVEAuthCookie={ticket}"));
                if method != Method::GET {
                    req = req.header("CSRFPreventionToken", csrf);
                }
            }
            Auth::Token(t) => req = req.header("Authorization", format!("PVEAPIToken={t}")),
        }
        let resp = req.send().await.expect("request is answered");
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (code, body)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (code, body) = self.call(Method::GET, path, &[]).await;
        assert_eq!(code, 200, "GET {path}: {body}");
        body["data"].clone()
    }

    /// Calls `method path` and asserts the answer's status; returns the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        code: u16,
    ) -> Value {
        let (got, body) = self.call(method.clone(), path, params).await;
        assert_eq!(got, code, "{method} {path} {params:?}: {body}");
        body
    }

    /// [`Api::expect`] and the body's `message` (PVE's error text, with its newline).
    pub async fn expect_message(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        (code, message): (u16, &str),
    ) -> Value {
        let body = self.expect(method.clone(), path, params, code).await;
        assert_eq!(body["message"], message, "{method} {path} {params:?}");
        body
    }

    /// A 400 whose `errors` name `param` with the text `error`; returns the body.
    pub async fn expect_param_error(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        (param, error): (&str, &str),
    ) -> Value {
        let body = self.expect(method.clone(), path, params, 400).await;
        assert_eq!(body["errors"][param], error, "{method} {path} {params:?}");
        body
    }

    /// [`Api::expect_message`] for a 500 saying that the config flock of `vmid` timed out.
    pub async fn expect_lock_timeout(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        vmid: &str,
    ) {
        let message = format!("{}\n", lock_timeout(vmid));
        self.expect_message(method, path, params, (500, &message))
            .await;
    }

    /// `POST /nodes/pve/qemu` with `vmid` and `params`: the status and the body.
    pub async fn try_create(&self, vmid: &str, params: &[(&str, &str)]) -> (u16, Value) {
        self.call(Method::POST, "/nodes/pve/qemu", &with_vmid(vmid, params))
            .await
    }

    /// Starts `POST /nodes/pve/qemu` with `vmid` and `params`; returns the UPID.
    pub async fn start_create(&self, vmid: &str, params: &[(&str, &str)]) -> String {
        self.upid(Method::POST, "/nodes/pve/qemu", &with_vmid(vmid, params))
            .await
    }

    /// Runs `POST /nodes/pve/qemu` with `vmid` and `params`; returns the task's exit status.
    pub async fn run_create(&self, vmid: &str, params: &[(&str, &str)]) -> String {
        self.run(Method::POST, "/nodes/pve/qemu", &with_vmid(vmid, params))
            .await
    }

    /// Starts an asynchronous call and returns its UPID.
    pub async fn upid(&self, method: Method, path: &str, params: &[(&str, &str)]) -> String {
        let (code, body) = self.call(method.clone(), path, params).await;
        assert_eq!(code, 200, "{method} {path}: {body}");
        let upid = body["data"].as_str().unwrap_or_default().to_string();
        assert!(upid.starts_with("UPID:"), "{method} {path} returned {body}");
        upid
    }

    /// Polls the task until it has stopped; returns its status object.
    pub async fn wait_task(&self, upid: &str) -> Value {
        let node = upid.split(':').nth(1).unwrap_or("pve").to_string();
        let path = format!("/nodes/{node}/tasks/{}/status", urlencode(upid));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.get(&path).await;
            if status["status"] == "stopped" {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "task {upid} did not finish: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs an asynchronous call to completion and returns the task's exit status.
    pub async fn run(&self, method: Method, path: &str, params: &[(&str, &str)]) -> String {
        let upid = self.upid(method, path, params).await;
        let status = self.wait_task(&upid).await;
        status["exitstatus"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// [`Api::run`] and asserts that the task ended `OK`.
    pub async fn run_ok(&self, method: Method, path: &str, params: &[(&str, &str)]) {
        let exit = self.run(method.clone(), path, params).await;
        assert_eq!(exit, "OK", "{method} {path} {params:?}");
    }

    /// Runs `POST /nodes/pve/qemu/{vmid}/status/{action}` (start, stop, ...); returns the exit
    /// status.
    pub async fn vm_action(&self, vmid: &str, action: &str) -> String {
        let path = format!("/nodes/pve/qemu/{vmid}/status/{action}");
        self.run(Method::POST, &path, &[]).await
    }

    /// [`Api::vm_action`] and asserts that the task ended `OK`.
    pub async fn vm_action_ok(&self, vmid: &str, action: &str) {
        let exit = self.vm_action(vmid, action).await;
        assert_eq!(exit, "OK", "{action} of VM {vmid}");
    }
}

/// `params` after a leading `vmid`.
fn with_vmid<'a>(vmid: &'a str, params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("vmid", vmid)];
    all.extend_from_slice(params);
    all
}

/// The error of a config flock on `vmid` that timed out (a task's exit status; an API error's
/// message adds a newline).
pub fn lock_timeout(vmid: &str) -> String {
    format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")
}

pub fn urlencode(s: &str) -> String {
    s.replace(':', "%3A")
        .replace('@', "%40")
        .replace('!', "%21")
}

/// Sends a raw HTTP/1.1 request to a plain-HTTP simulator; returns (status, reason, headers, body).
pub async fn raw(sim: &RunningSim, request: &str) -> (u16, String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or_default().to_string();
    (code, reason, head.to_string(), body.to_string())
}

/// [`raw`] with a [`get_request`] of `path`.
pub async fn raw_get(
    sim: &RunningSim,
    path: &str,
    extra_headers: &str,
) -> (u16, String, String, String) {
    raw(sim, &get_request(path, extra_headers)).await
}

/// A raw request header with a forged ticket for root (a valid shape, a wrong signature).
pub const FORGED_TICKET: &str = "Cookie: PVEAuthCookie=PVE:root@pam:65000000::Zm9yZ2Vk\r\n";

/// The status and reason phrase of a raw `GET /version` with the API token `token`
/// (`user!name=secret`).
pub async fn version_with_token(sim: &RunningSim, token: &str) -> (u16, String) {
    let header = format!("Authorization: PVEAPIToken={token}\r\n");
    let (code, reason, _, _) = raw_get(sim, "/version", &header).await;
    (code, reason)
}

/// Asserts 9.1's unified answer to a forged ticket and to the bad API token `token`: 401
/// "Authentication failed!" (for the ticket with an empty body).
pub async fn assert_unified_auth_failures(sim: &RunningSim, token: &str) {
    let (code, reason, _, body) = raw_get(sim, "/version", FORGED_TICKET).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "Authentication failed!", ""),
        "a forged ticket"
    );
    let (code, reason) = version_with_token(sim, token).await;
    assert_eq!(
        (code, reason.as_str()),
        (401, "Authentication failed!"),
        "{token}"
    );
}

pub fn get_request(path: &str, extra_headers: &str) -> String {
    format!(
        "GET /api2/json{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n"
    )
}

pub async fn create_vm(api: &Api, vmid: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("vmid", vmid),
        ("name", "web-1"),
        ("memory", "2048"),
        ("cores", "2"),
        ("net0", "virtio,bridge=vmbr0,tag=10"),
        ("scsi0", "local-lvm:32,iothread=1"),
    ];
    params.extend_from_slice(extra);
    api.run(Method::POST, "/nodes/pve/qemu", &params).await
}

/// [`create_vm`] and asserts that the create task ended `OK`.
pub async fn create_vm_ok(api: &Api, vmid: &str, extra: &[(&str, &str)]) {
    let exit = create_vm(api, vmid, extra).await;
    assert_eq!(exit, "OK", "create of VM {vmid} with {extra:?}");
}

/// The entry of the JSON list `list` whose `field` is `value` (`Null` if none is).
pub fn entry_where(list: &Value, field: &str, value: impl Into<Value>) -> Value {
    let value = value.into();
    list.as_array()
        .and_then(|l| l.iter().find(|e| e[field] == value))
        .cloned()
        .unwrap_or_default()
}

/// Moves the simulator's clock forward (tickets age, guests boot) without waiting.
pub async fn advance_clock(sim: &pve_sim::RunningSim, secs: u64) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let answer = client
        .post(format!("{}/_sim/clock", sim.base_url()))
        .json(&json!({ "advance_secs": secs }))
        .send()
        .await
        .expect("clock");
    assert_eq!(answer.status().as_u16(), 200);
}

pub async fn sim_put(sim: &RunningSim, path: &str, body: &Value) -> u16 {
    http_client(sim)
        .put(format!("{}{path}", sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("sim endpoint")
        .status()
        .as_u16()
}

pub async fn sim_get(sim: &RunningSim, path: &str) -> Value {
    http_client(sim)
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("sim endpoint")
        .json()
        .await
        .expect("json")
}
