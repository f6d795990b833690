//! Integration tests of the simulator, driven over real HTTP(S) with reqwest (and a raw socket
//! where the HTTP reason phrase matters, which reqwest does not expose).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pve_sim::config::{AuthErrorStyle, ClusterConfig};
use pve_sim::version::PveVersion;
use pve_sim::{RunningSim, SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT_PW: &str = "s3cret-root";

const USER_CFG: &str = "\
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

/// The reference material's directory (`../shared/pve-reference` beside the workspace).
fn reference_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pve-reference");
    assert!(
        dir.join("pve-8.4-api-schema.json").is_file(),
        "the PVE reference material is missing: expected {} (shared/pve-reference beside the checkout)",
        dir.display()
    );
    dir
}

fn fast_config() -> ClusterConfig {
    let mut cfg = ClusterConfig::default();
    cfg.task_durations_ms.create = 150;
    cfg.user_cfg = Some(USER_CFG.to_string());
    cfg
}

async fn start_with(config: ClusterConfig, insecure_http: bool) -> RunningSim {
    let mut opts = SimOptions::new(ROOT_PW);
    opts.config = config;
    opts.insecure_http = insecure_http;
    SimServer::start(opts).await.expect("simulator starts")
}

async fn start() -> RunningSim {
    start_with(fast_config(), false).await
}

/// [`fast_config`] simulating `version`.
fn config_of(version: PveVersion) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.pve_version = version;
    cfg
}

fn http_client(sim: &RunningSim) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_info(true)
        .build()
        .expect("client")
}

#[derive(Clone)]
enum Auth {
    None,
    Ticket { ticket: String, csrf: String },
    Token(String),
}

/// A minimal Proxmox API client for the tests.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl Api {
    fn anonymous(sim: &RunningSim) -> Self {
        Self {
            http: http_client(sim),
            base: sim.url(),
            auth: Auth::None,
        }
    }

    async fn login(sim: &RunningSim, user: &str, password: &str) -> Self {
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

    async fn root(sim: &RunningSim) -> Self {
        Self::login(sim, "root@pam", ROOT_PW).await
    }

    /// The ticket of a logged-in client (empty otherwise).
    fn ticket(&self) -> String {
        match &self.auth {
            Auth::Ticket { ticket, .. } => ticket.clone(),
            _ => String::new(),
        }
    }

    fn with_token(sim: &RunningSim, value: &str) -> Self {
        Self {
            auth: Auth::Token(value.to_string()),
            ..Self::anonymous(sim)
        }
    }

    async fn call(&self, method: Method, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
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

    async fn get(&self, path: &str) -> Value {
        let (code, body) = self.call(Method::GET, path, &[]).await;
        assert_eq!(code, 200, "GET {path}: {body}");
        body["data"].clone()
    }

    /// Starts an asynchronous call and returns its UPID.
    async fn upid(&self, method: Method, path: &str, params: &[(&str, &str)]) -> String {
        let (code, body) = self.call(method.clone(), path, params).await;
        assert_eq!(code, 200, "{method} {path}: {body}");
        let upid = body["data"].as_str().unwrap_or_default().to_string();
        assert!(upid.starts_with("UPID:"), "{method} {path} returned {body}");
        upid
    }

    /// Polls the task until it has stopped; returns its status object.
    async fn wait_task(&self, upid: &str) -> Value {
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
    async fn run(&self, method: Method, path: &str, params: &[(&str, &str)]) -> String {
        let upid = self.upid(method, path, params).await;
        let status = self.wait_task(&upid).await;
        status["exitstatus"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A")
        .replace('@', "%40")
        .replace('!', "%21")
}

/// Sends a raw HTTP/1.1 request to a plain-HTTP simulator; returns (status, reason, headers, body).
async fn raw(sim: &RunningSim, request: &str) -> (u16, String, String, String) {
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

fn get_request(path: &str, extra_headers: &str) -> String {
    format!(
        "GET /api2/json{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n"
    )
}

async fn create_vm(api: &Api, vmid: &str, extra: &[(&str, &str)]) -> String {
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

// ------------------------------------------------------------------------------------------------
// Server, TLS, embedding

#[tokio::test]
async fn https_certificate_is_signed_by_the_ca_and_matches_the_fingerprint() {
    let sim = start().await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    assert!(sim.url().ends_with("/api2/json"));
    let resp = http_client(&sim)
        .get(format!("{}/version", sim.url()))
        .send()
        .await
        .expect("TLS verified against the CA");
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().cloned();
    let der = info
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .unwrap_or_default();
    assert_eq!(pve_sim::tls::fingerprint_of(&der), sim.fingerprint());
    let fp = sim.fingerprint();
    assert_eq!(fp.len(), 95);
    assert!(
        fp.chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    let nodes = Api::root(&sim).await.get("/nodes").await;
    assert_eq!(nodes[0]["ssl_fingerprint"], json!(fp));
}

#[tokio::test]
async fn the_binary_serves_with_a_yaml_config_and_prints_url_and_fingerprint() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        "pve_version: '8.4'\nversion: {version: 8.4.9, release: '8.4', repoid: 0123456789abcdef}\n",
    )
    .expect("config written");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pve-sim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root-password",
            "pw",
            "--config",
        ])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut url = String::new();
    let mut fingerprint = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(u) = line.strip_prefix("pve-sim listening on ") {
            url = u.to_string();
        }
        if let Some(f) = line.strip_prefix("fingerprint: ") {
            fingerprint = f.to_string();
            break;
        }
    }
    assert!(
        url.starts_with("https://127.0.0.1:") && url.ends_with("/api2/json"),
        "{url}"
    );
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let login: Value = client
        .post(format!("{url}/access/ticket"))
        .form(&[("username", "root@pam"), ("password", "pw")])
        .send()
        .await
        .expect("login answered")
        .json()
        .await
        .expect("json");
    let ticket = login["data"]["ticket"].as_str().unwrap_or_default();
    let version: Value = client
        .get(format!("{url}/version"))
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .send()
        .await
        .expect("version answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        version["data"]["version"], "8.4.9",
        "the YAML config is used"
    );
    child.kill().await.expect("killed");
}

#[tokio::test]
async fn dropping_the_simulator_stops_the_server() {
    let sim = start_with(fast_config(), true).await;
    let addr = sim.addr();
    drop(sim);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server still accepts connections after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn plain_client_flow_login_create_wait_start_stop_delete() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let id = api.get("/cluster/nextid").await;
    assert_eq!(id, json!("100"), "nextid is a string");
    assert_eq!(create_vm(&api, "100", &[]).await, "OK");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/100/status/start", &[])
            .await,
        "OK"
    );
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "running");
    assert_eq!(status["qmpstatus"], "running");
    assert_eq!(status["maxmem"], json!(2048u64 << 20));
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/100/status/stop", &[])
            .await,
        "OK"
    );
    let status = api.get("/nodes/pve/qemu/100/status/current").await;
    assert_eq!(status["status"], "stopped");
    let deleted = api
        .run(
            Method::DELETE,
            "/nodes/pve/qemu/100",
            &[("purge", "1"), ("destroy-unreferenced-disks", "1")],
        )
        .await;
    assert_eq!(deleted, "OK");
    let (code, body) = api
        .call(Method::GET, "/nodes/pve/qemu/100/config", &[])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist\n"
    );
    let content = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=100")
        .await;
    assert_eq!(content, json!([]), "the VM's disk was freed");
}

#[tokio::test]
async fn auth_failures_are_401_with_exact_reasons_and_empty_bodies() {
    let sim = start_with(fast_config(), true).await;
    let (code, reason, head, body) = raw(&sim, &get_request("/version", "")).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "No ticket", "")
    );
    assert!(head.to_ascii_lowercase().contains("connection: close"));
    assert!(!head.to_ascii_lowercase().contains("content-type"));

    let forged = "Cookie: PVEAuthCookie=PVE:root@pam:65000000::Zm9yZ2Vk\r\n";
    let (code, reason, _, body) = raw(&sim, &get_request("/version", forged)).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "Authentication failed!", "")
    );

    let colon = "Authorization: PVEAPIToken=root@pam!t:abc\r\n";
    let (code, reason, _, _) = raw(&sim, &get_request("/version", colon)).await;
    assert_eq!((code, reason.as_str()), (401, "Authentication failed!"));

    let (code, reason, _, body) = raw(
        &sim,
        "POST /api2/json/access/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 31\r\n\r\nusername=root@pam&password=bad1",
    )
    .await;
    assert_eq!((code, reason.as_str()), (401, "authentication failure"));
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        body,
        json!({"data": null, "message": "authentication failure\n"})
    );
}

#[tokio::test]
async fn older_auth_error_style_uses_the_detailed_reasons() {
    let mut cfg = fast_config();
    cfg.auth.error_style = AuthErrorStyle::Detailed;
    let sim = start_with(cfg, true).await;
    let forged = "Cookie: PVEAuthCookie=PVE:root@pam:65000000::Zm9yZ2Vk\r\n";
    let (_, reason, _, _) = raw(&sim, &get_request("/version", forged)).await;
    assert_eq!(reason, "permission denied - invalid PVE ticket");
    let colon = "Authorization: PVEAPIToken=root@pam!t:abc\r\n";
    let (_, reason, _, _) = raw(&sim, &get_request("/version", colon)).await;
    assert_eq!(reason, "no tokenid specified");
    let header = |t: &str| format!("Authorization: PVEAPIToken={t}\r\n");
    let (_, reason, _, _) = raw(&sim, &get_request("/version", &header("carol@pve!nope=x"))).await;
    assert_eq!(reason, "no such token 'nope' for user 'carol@pve'");
    let now = sim.with_state(|s| pve_sim::clock::now_ms(s.clock_offset_ms) / 1000);
    let secret = sim
        .with_state(|s| {
            s.access
                .token_add("carol@pve", "ci", Some(false), Some(now + 100), None)
        })
        .expect("token");
    let (code, _, _, _) = raw(
        &sim,
        &get_request("/version", &header(&format!("carol@pve!ci={secret}"))),
    )
    .await;
    assert_eq!(code, 200);
    let (_, reason, _, _) = raw(
        &sim,
        &get_request("/version", &header("carol@pve!ci=wrong")),
    )
    .await;
    assert_eq!(reason, "invalid token value!");
    sim.with_state(|s| s.clock_offset_ms += 200_000);
    let (_, reason, _, _) = raw(
        &sim,
        &get_request("/version", &header(&format!("carol@pve!ci={secret}"))),
    )
    .await;
    assert_eq!(
        reason, "token 'ci' access expired",
        "expiry follows the simulator clock"
    );
}

#[tokio::test]
async fn non_get_requests_with_a_ticket_need_the_csrf_token() {
    let sim = start_with(fast_config(), true).await;
    let api = Api::root(&sim).await;
    let Auth::Ticket { ticket, .. } = &api.auth else {
        panic!("ticket auth expected");
    };
    let req = format!(
        "POST /api2/json/nodes/pve/qemu HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: PVEAuthCookie={ticket}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nvmid=4242"
    );
    let (code, reason, _, body) = raw(&sim, &req).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "Permission denied - invalid csrf token", "")
    );
    let (code, _) = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "4242")])
        .await;
    assert_eq!(code, 200, "with the CSRF token the same call passes");
}

#[tokio::test]
async fn ticket_renews_with_the_ticket_as_password_and_expires_after_two_hours() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let Auth::Ticket { ticket, .. } = api.auth.clone() else {
        panic!("ticket auth expected");
    };
    assert!(ticket.starts_with("PVE:root@pam:"));
    assert!(ticket.contains("::"));
    let anon = Api::anonymous(&sim);
    let (code, body) = anon
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "root@pam"), ("password", &ticket)],
        )
        .await;
    assert_eq!(code, 200, "renewal: {body}");
    let clock = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let advance = clock
        .post(format!("{}/_sim/clock", sim.base_url()))
        .json(&json!({"advance_secs": 7201}))
        .send()
        .await
        .expect("clock");
    assert_eq!(advance.status().as_u16(), 200);
    let (code, _) = api.call(Method::GET, "/version", &[]).await;
    assert_eq!(code, 401, "a ticket older than 2 h is refused");
    let (code, _) = anon
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "root@pam"), ("password", &ticket)],
        )
        .await;
    assert_eq!(code, 401, "an expired ticket cannot be renewed");
}

#[tokio::test]
async fn api_tokens_authenticate_and_privsep_tokens_start_without_privileges() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    let (code, body) = root
        .call(Method::POST, "/access/users/carol@pve/token/ci", &[])
        .await;
    assert_eq!(code, 200, "token create: {body}");
    assert_eq!(body["data"]["full-tokenid"], "carol@pve!ci");
    let secret = body["data"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = Api::with_token(&sim, &format!("carol@pve!ci={secret}"));
    let version = token.get("/version").await;
    assert_eq!(version["version"], "9.1.5");
    let (code, body) = token
        .call(Method::GET, "/nodes/pve/qemu/9000/config", &[])
        .await;
    assert_eq!(code, 403, "privsep token without ACLs: {body}");
    let wrong = Api::with_token(&sim, "carol@pve!ci=00000000-0000-0000-0000-000000000000");
    let (code, _) = wrong.call(Method::GET, "/version", &[]).await;
    assert_eq!(code, 401);
    let (code, body) = token
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "carol@pve"), ("password", "x")],
        )
        .await;
    assert_eq!(code, 403, "tokens cannot use /access/ticket: {body}");
    assert_eq!(
        body["message"],
        "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.\n)\n"
    );
}

#[tokio::test]
async fn the_readme_least_privilege_token_setup_works() {
    use pve_sim::access::AclSubject;
    let mut opts = SimOptions::new("secret");
    opts.config.user_cfg = Some("user:ci@pve:1:0:::::\nacl:1:/vms:ci@pve:PVEVMAdmin:\n".into());
    let sim = SimServer::start(opts).await.expect("starts");
    let secret = sim
        .with_state(|s| {
            let secret = s.access.token_add("ci@pve", "op", Some(true), None, None)?;
            s.access.acl_modify(
                "/vms",
                AclSubject::Token("ci@pve!op".into()),
                "PVEVMAdmin",
                true,
            )?;
            Ok::<_, pve_sim::access::AccessError>(secret)
        })
        .expect("token and ACL");
    let token = Api::with_token(&sim, &format!("ci@pve!op={secret}"));
    let conf = token.get("/nodes/pve/qemu/9000/config").await;
    assert_eq!(conf["template"], json!(1));
    let (code, _) = token.call(Method::GET, "/nodes/pve/status", &[]).await;
    assert_eq!(code, 403, "nothing beyond /vms");
}

#[tokio::test]
async fn disabling_a_user_invalidates_their_ticket_and_tokens() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    sim.with_state(|s| s.access.user_passwd("carol@pve", "carolpw"))
        .expect("password");
    let carol = Api::login(&sim, "carol@pve", "carolpw").await;
    let (_, body) = root
        .call(Method::POST, "/access/users/carol@pve/token/ci", &[])
        .await;
    let secret = body["data"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = Api::with_token(&sim, &format!("carol@pve!ci={secret}"));
    assert_eq!(carol.call(Method::GET, "/version", &[]).await.0, 200);
    assert_eq!(token.call(Method::GET, "/version", &[]).await.0, 200);
    let (code, body) = root
        .call(Method::PUT, "/access/users/carol@pve", &[("enable", "0")])
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(carol.call(Method::GET, "/version", &[]).await.0, 401);
    assert_eq!(token.call(Method::GET, "/version", &[]).await.0, 401);
    let (code, _) = Api::anonymous(&sim)
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "carol@pve"), ("password", "carolpw")],
        )
        .await;
    assert_eq!(code, 401);
}

// ------------------------------------------------------------------------------------------------
// Pipeline order and errors

#[tokio::test]
async fn pipeline_answers_401_then_501_then_403_then_400() {
    let sim = start().await;
    let (code, _) = Api::anonymous(&sim)
        .call(Method::GET, "/nodes/pve/nonsense", &[])
        .await;
    assert_eq!(code, 401, "authentication comes first");
    let root = Api::root(&sim).await;
    let (code, body) = root.call(Method::GET, "/nodes/pve/nonsense", &[]).await;
    assert_eq!(code, 501);
    assert_eq!(
        body["message"],
        "Method 'GET /nodes/pve/nonsense' not implemented\n"
    );
    sim.with_state(|s| s.access.user_passwd("bob@pve", "bobpw"))
        .expect("password");
    let bob = Api::login(&sim, "bob@pve", "bobpw").await;
    let (code, body) = bob
        .call(Method::GET, "/nodes/pve/qemu/100/config", &[("bogus", "1")])
        .await;
    assert_eq!(
        code, 403,
        "permission check precedes parameter validation: {body}"
    );
    assert_eq!(
        body["message"],
        "Permission check failed (/vms/100, VM.Audit)\n"
    );
    let (code, body) = root
        .call(Method::GET, "/nodes/pve/qemu/100/config", &[("bogus", "1")])
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["errors"]["bogus"],
        "property is not defined in schema and the schema does not allow additional properties"
    );
    assert_eq!(body["message"], "Parameter verification failed.\n");

    // The same order where the permission spec is one the router cannot express in a table
    // (userid-param, userid-group, perm-modify): bob may not create users or change ACLs, and
    // hears that before anything about his parameters.
    let bad = [
        ("userid", "carol@pve"),
        ("bogus", "1"),
        ("email", "not an address"),
    ];
    let (code, body) = bob.call(Method::POST, "/access/users", &bad).await;
    assert_eq!(code, 403, "userid-param check precedes validation: {body}");
    let (code, body) = bob
        .call(
            Method::PUT,
            "/access/acl",
            &[("path", "/vms"), ("roles", "PVEAdmin"), ("bogus", "1")],
        )
        .await;
    assert_eq!(code, 403, "perm-modify check precedes validation: {body}");
    let (code, body) = root.call(Method::POST, "/access/users", &bad).await;
    assert_eq!(
        code, 400,
        "root passes the check and meets validation: {body}"
    );
}

#[tokio::test]
async fn parameter_errors_are_reported_per_parameter() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    let (code, body) = root
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "50"),
                ("cores", "many"),
                ("start", "true"),
                ("net0", "virtio,bogus=1"),
            ],
        )
        .await;
    assert_eq!(code, 400);
    let errors = &body["errors"];
    assert_eq!(errors["vmid"], "value must have a minimum value of 100");
    assert_eq!(
        errors["cores"],
        "type check ('integer') failed - got 'many'"
    );
    assert_eq!(
        errors["start"],
        "type check ('boolean') failed - got 'true'"
    );
    assert!(
        errors["net0"]
            .as_str()
            .unwrap_or_default()
            .starts_with("invalid format - ")
    );
}

#[tokio::test]
async fn error_message_style_without_json_message_keeps_only_the_reason_phrase() {
    let mut cfg = fast_config();
    cfg.json_error_message = false;
    let sim = start_with(cfg, true).await;
    let api = Api {
        http: reqwest::Client::new(),
        base: sim.url(),
        auth: Auth::None,
    };
    let login = Api::login(&sim, "root@pam", ROOT_PW).await;
    let api = Api {
        auth: login.auth,
        ..api
    };
    let (code, body) = api
        .call(Method::GET, "/nodes/pve/qemu/777/config", &[])
        .await;
    assert_eq!(code, 500);
    assert_eq!(body, json!({"data": null}));
    let Auth::Ticket { ticket, .. } = &api.auth else {
        panic!("ticket auth expected");
    };
    let (_, reason, _, _) = raw(
        &sim,
        &get_request(
            "/nodes/pve/qemu/777/config",
            &format!("Cookie: PVEAuthCookie={ticket}\r\n"),
        ),
    )
    .await;
    assert_eq!(
        reason,
        "Configuration file 'nodes/pve/qemu-server/777.conf' does not exist"
    );
}

#[tokio::test]
async fn extjs_format_answers_handler_errors_with_http_200() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    let extjs = Api {
        base: sim.url().replace("/api2/json", "/api2/extjs"),
        ..root
    };
    let (code, body) = extjs
        .call(Method::GET, "/nodes/pve/qemu/4711/config", &[])
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["success"], json!(0));
    assert_eq!(body["status"], json!(500));
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve/qemu-server/4711.conf' does not exist\n"
    );
    let (code, body) = extjs.call(Method::GET, "/version", &[]).await;
    assert_eq!((code, body["success"].clone()), (200, json!(1)));
    assert_eq!(body["data"]["release"], "9.1");
    let (code, _) = Api {
        auth: Auth::None,
        ..extjs
    }
    .call(Method::GET, "/version", &[])
    .await;
    assert_eq!(code, 401, "authentication failures stay real 401s");
}

#[tokio::test]
async fn answers_over_one_kib_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let sim = start_with(fast_config(), true).await;
    let api = Api::root(&sim).await;
    for id in ["100", "101", "102"] {
        assert_eq!(create_vm(&api, id, &[]).await, "OK");
    }
    let Auth::Ticket { ticket, .. } = &api.auth else {
        panic!("ticket auth expected");
    };
    let cookie = format!("Cookie: PVEAuthCookie={ticket}\r\n");
    // Raw bytes: the body is binary.
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let req = get_request(
        "/cluster/resources",
        &format!("{cookie}Accept-Encoding: gzip\r\n"),
    );
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let head = String::from_utf8_lossy(&buf[..buf.len().min(400)]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let start = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(0);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&buf[start..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    let json: Value = serde_json::from_str(&text).expect("JSON inside");
    assert!(json["data"].as_array().is_some_and(|l| !l.is_empty()));
    let (_, _, head, _) = raw(
        &sim,
        &get_request("/version", &format!("{cookie}Accept-Encoding: gzip\r\n")),
    )
    .await;
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "small answers stay plain"
    );
}

#[tokio::test]
async fn unknown_node_fails_like_a_failed_proxy_lookup() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    let (code, body) = root.call(Method::GET, "/nodes/nowhere/qemu", &[]).await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "hostname lookup 'nowhere' failed - failed to get address info for: nowhere: Name or service not known\n"
    );
}

// ------------------------------------------------------------------------------------------------
// VM semantics

#[tokio::test]
async fn create_rewrites_nics_and_disks_like_pve() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = create_vm(
        &api,
        "101",
        &[
            (
                "ide2",
                "local:iso/debian-12.7.0-amd64-netinst.iso,media=cdrom",
            ),
            ("tags", "B;a"),
        ],
    )
    .await;
    assert_eq!(exit, "OK");
    let conf = api.get("/nodes/pve/qemu/101/config").await;
    let net = conf["net0"].as_str().unwrap_or_default();
    assert!(net.starts_with("virtio=BC:24:11:"), "{net}");
    assert!(net.ends_with(",bridge=vmbr0,tag=10"), "{net}");
    assert_eq!(conf["scsi0"], "local-lvm:vm-101-disk-0,iothread=1,size=32G");
    assert_eq!(conf["memory"], json!("2048"), "memory is a string");
    assert_eq!(conf["cores"], json!(2), "cores is a number");
    // 9.1.17+ normalises tags at create as config updates do (lower-cased, sorted); 8.4 stored
    // them verbatim (the version tests show both).
    assert_eq!(conf["tags"], "a;b", "create normalises tags");
    assert_eq!(conf["boot"], "order=scsi0;ide2;net0");
    assert!(
        conf["smbios1"]
            .as_str()
            .unwrap_or_default()
            .starts_with("uuid=")
    );
    assert_eq!(conf["digest"].as_str().map(str::len), Some(40));
    assert!(conf.get("vmid").is_none());
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/101/status/start", &[])
        .await;
    let log_path = format!("/nodes/pve/tasks/{}/log", urlencode(&upid));
    api.wait_task(&upid).await;
    let (code, log) = api.call(Method::GET, &log_path, &[]).await;
    assert_eq!(code, 200);
    let last = log["data"]
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["t"], "TASK OK");
    assert_eq!(
        log["total"],
        json!(log["data"].as_array().map(Vec::len).unwrap_or(0))
    );
}

#[tokio::test]
async fn config_shows_the_create_lock_while_creating_and_other_changes_are_refused() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.create = 60_000;
    cfg.flock_timeout_ms = 300;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    let upid = api
        .upid(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "102"), ("scsi0", "local-lvm:8")],
        )
        .await;
    assert!(upid.contains(":qmcreate:102:root@pam:"));
    let conf = api.get("/nodes/pve/qemu/102/config").await;
    assert_eq!(conf["lock"], "create");
    assert_eq!(
        conf.as_object().map(|o| o.len()),
        Some(2),
        "only digest and lock: {conf}"
    );
    let asked = Instant::now();
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/102/config", &[("cores", "4")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"], "can't lock file '/var/lock/qemu-server/lock-102.conf' - got timeout\n",
        "the create worker holds the config lock"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "it waited for the lock first"
    );
    let (code, body) = api
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "102")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 102 - VM 102 already exists on node 'pve'\n"
    );
    let (code, body) = api
        .call(Method::GET, "/cluster/nextid", &[("vmid", "102")])
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["vmid"], "VM 102 already exists");
    assert_eq!(
        api.get("/cluster/nextid").await,
        json!("100"),
        "nextid does not reserve"
    );
    let (code, _) = api
        .call(
            Method::DELETE,
            &format!("/nodes/pve/tasks/{}", urlencode(&upid)),
            &[],
        )
        .await;
    assert_eq!(code, 200);
    let status = api.wait_task(&upid).await;
    assert_eq!(status["exitstatus"], "interrupted by signal");
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/102/config", &[])
        .await;
    assert_eq!(code, 500, "a stopped create leaves no VM behind");
}

#[tokio::test]
async fn config_changes_wait_for_a_task_holding_the_config_lock_and_stale_locks_refuse() {
    let mut cfg = fast_config();
    cfg.task_durations_ms.stop = 400;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "111", &[("start", "1")]).await, "OK");
    let stop = api
        .upid(Method::POST, "/nodes/pve/qemu/111/status/stop", &[])
        .await;
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/111/config", &[("cores", "3")])
        .await;
    assert_eq!(code, 200, "the change waited for the stop task: {body}");
    let status = api
        .get(&format!("/nodes/pve/tasks/{}/status", urlencode(&stop)))
        .await;
    assert_eq!(
        status["status"], "stopped",
        "the stop finished before the change ran"
    );
    let current = api.get("/nodes/pve/qemu/111/config?current=1").await;
    assert_eq!(
        current["cores"],
        json!(3),
        "applied directly: the VM was stopped by then"
    );
    sim.with_state(|s| {
        if let Some(vm) = s.vms.get_mut(&111) {
            vm.lock = Some("backup".into());
        }
    });
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/111/config", &[("cores", "4")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM is locked (backup)\n");
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/111/status/start", &[])
        .await;
    assert_eq!(exit, "VM is locked (backup)");
}

#[tokio::test]
async fn concurrent_creators_racing_for_one_vmid_get_exactly_one_winner() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let id = api.get("/cluster/nextid").await;
    let id = id.as_str().unwrap_or_default().to_string();
    let attempts = (0..8).map(|_| {
        let api = api.clone();
        let id = id.clone();
        async move {
            api.call(Method::POST, "/nodes/pve/qemu", &[("vmid", id.as_str())])
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|(code, _)| *code == 200).count();
    assert_eq!(winners, 1, "{results:?}");
    let expected = format!("unable to create VM {id} - VM {id} already exists on node 'pve'\n");
    for (code, body) in results.iter().filter(|(code, _)| *code != 200) {
        assert_eq!(*code, 500);
        assert_eq!(body["message"], json!(expected));
    }
}

#[tokio::test]
async fn tasks_on_one_vm_queue_behind_its_config_lock_in_order() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "116", &[]).await, "OK");
    let start = api
        .upid(Method::POST, "/nodes/pve/qemu/116/status/start", &[])
        .await;
    let stop = api
        .upid(Method::POST, "/nodes/pve/qemu/116/status/stop", &[])
        .await;
    let destroy = api
        .upid(Method::DELETE, "/nodes/pve/qemu/116", &[("purge", "1")])
        .await;
    assert_eq!(api.wait_task(&destroy).await["exitstatus"], "OK");
    assert_eq!(
        api.wait_task(&start).await["exitstatus"],
        "OK",
        "start ran first"
    );
    assert_eq!(api.wait_task(&stop).await["exitstatus"], "OK", "then stop");
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/116/config", &[])
        .await;
    assert_eq!(code, 500, "then the VM was destroyed");
}

#[tokio::test]
async fn allocation_fails_the_task_when_the_storage_is_full() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "103"), ("scsi0", "local-lvm:3000")],
        )
        .await;
    assert!(exit.starts_with("unable to create VM 103 - "), "{exit}");
    assert!(exit.contains("does not have enough free space"), "{exit}");
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/103/config", &[])
        .await;
    assert_eq!(code, 500, "the failed VM is gone");
}

#[tokio::test]
async fn starting_beyond_node_memory_fails_the_task() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "104", &[("memory", "40000")]).await, "OK");
    assert_eq!(create_vm(&api, "105", &[("memory", "40000")]).await, "OK");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/104/status/start", &[])
            .await,
        "OK"
    );
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    assert_eq!(exit, "start failed: QEMU exited with code 1");
    let again = api
        .run(Method::POST, "/nodes/pve/qemu/104/status/start", &[])
        .await;
    assert_eq!(again, "VM 104 already running");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/105/config",
            &[("memory", "512"), ("net0", "virtio,bridge=vmbr9")],
        )
        .await;
    assert_eq!(code, 200);
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    assert_eq!(exit, "bridge 'vmbr9' does not exist");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/105/config",
            &[
                ("net0", "virtio,bridge=vmbr0"),
                ("ide2", "local:iso/missing.iso,media=cdrom"),
            ],
        )
        .await;
    assert_eq!(code, 200, "a missing ISO is accepted in the config");
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/105/status/start", &[])
        .await;
    let status = api.wait_task(&upid).await;
    assert_eq!(
        status["exitstatus"],
        "start failed: QEMU exited with code 1"
    );
    let (_, log) = api
        .call(
            Method::GET,
            &format!("/nodes/pve/tasks/{}/log", urlencode(&upid)),
            &[],
        )
        .await;
    assert!(
        log.to_string()
            .contains("Could not open 'local:iso/missing.iso'"),
        "{log}"
    );
}

#[tokio::test]
async fn deleting_a_running_vm_fails() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "106", &[("start", "1")]).await, "OK");
    let (code, body) = api.call(Method::DELETE, "/nodes/pve/qemu/106", &[]).await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM 106 is running - destroy failed\n");
    let (code, body) = api
        .call(Method::POST, "/nodes/pve/qemu/106/status/reboot", &[])
        .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn config_digest_pending_changes_and_tag_normalisation() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "107", &[]).await, "OK");
    let conf = api.get("/nodes/pve/qemu/107/config").await;
    let digest = conf["digest"].as_str().unwrap_or_default().to_string();
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[
                ("cores", "4"),
                ("digest", "0000000000000000000000000000000000000000"),
            ],
        )
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "checksum mismatch (file change by other user?)\n"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[("tags", "Zeta,alpha;alpha"), ("digest", &digest)],
        )
        .await;
    assert_eq!(
        (code, body["data"].clone()),
        (200, Value::Null),
        "PUT is synchronous"
    );
    assert_eq!(
        api.get("/nodes/pve/qemu/107/config").await["tags"],
        "alpha;zeta"
    );
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/107/status/start", &[])
            .await,
        "OK"
    );
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu/107/config",
            &[("cores", "8"), ("name", "renamed")],
        )
        .await;
    assert_eq!(exit, "OK");
    let conf = api.get("/nodes/pve/qemu/107/config").await;
    assert_eq!(conf["cores"], json!(8), "GET config shows pending values");
    let current = api.get("/nodes/pve/qemu/107/config?current=1").await;
    assert_eq!(
        current["cores"],
        json!(2),
        "current=1 shows the running values"
    );
    assert_eq!(current["name"], "renamed", "the name is applied at once");
    let pending = api.get("/nodes/pve/qemu/107/pending").await;
    let cores = pending
        .as_array()
        .and_then(|p| p.iter().find(|e| e["key"] == "cores"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(cores, json!({"key": "cores", "value": 2, "pending": 8}));
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/107/status/stop", &[])
            .await,
        "OK"
    );
    let current = api.get("/nodes/pve/qemu/107/config?current=1").await;
    assert_eq!(current["cores"], json!(8), "pending changes apply at stop");
    let (code, body) = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/107/config",
            &[("onboot", "1"), ("background_delay", "5")],
        )
        .await;
    assert_eq!(
        (code, body["data"].clone()),
        (200, Value::Null),
        "a worker that ends within background_delay answers null"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/107/config",
            &[("cores", "2"), ("delete", "cores")],
        )
        .await;
    assert_eq!(code, 400);
    assert!(body["errors"]["delete"].is_string());
}

#[tokio::test]
async fn config_update_allocates_disks_all_or_nothing_and_keeps_replaced_ones_unused() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "112", &[]).await, "OK");
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("scsi1", "local-lvm:10"), ("scsi2", "local-lvm:5000")],
        )
        .await;
    assert_eq!(code, 500, "{body}");
    let volumes = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=112")
        .await;
    assert_eq!(
        volumes.as_array().map(Vec::len),
        Some(1),
        "only the first disk: {volumes}"
    );
    let (code, body) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("scsi0", "local-lvm:4")],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let conf = api.get("/nodes/pve/qemu/112/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-112-disk-1,size=4G");
    assert_eq!(conf["unused0"], "local-lvm:vm-112-disk-0");
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/112/config",
            &[("delete", "unused0")],
        )
        .await;
    assert_eq!(code, 200);
    let volumes = api
        .get("/nodes/pve/storage/local-lvm/content?vmid=112")
        .await;
    assert_eq!(
        volumes.as_array().map(Vec::len),
        Some(1),
        "deleting unused0 frees it"
    );
}

#[tokio::test]
async fn resize_grows_disks_asynchronously_and_refuses_to_shrink() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "108", &[]).await, "OK");
    let upid = api
        .upid(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi0"), ("size", "+8G")],
        )
        .await;
    assert!(upid.contains(":resize:108:"));
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    let conf = api.get("/nodes/pve/qemu/108/config").await;
    assert_eq!(conf["scsi0"], "local-lvm:vm-108-disk-0,iothread=1,size=40G");
    let exit = api
        .run(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi0"), ("size", "10G")],
        )
        .await;
    assert_eq!(exit, "shrinking disks is not supported");
    let exit = api
        .run(
            Method::PUT,
            "/nodes/pve/qemu/108/resize",
            &[("disk", "scsi5"), ("size", "+1G")],
        )
        .await;
    assert_eq!(exit, "disk 'scsi5' does not exist");
}

#[tokio::test]
async fn clone_makes_linked_and_full_copies_of_a_template() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let upid = api
        .upid(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "120"), ("name", "linked")],
        )
        .await;
    assert!(
        upid.contains(":qmclone:9000:"),
        "the task id is the source VMID: {upid}"
    );
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    let linked = api.get("/nodes/pve/qemu/120/config").await;
    assert_eq!(
        linked["scsi0"],
        "local-lvm:base-9000-disk-0/vm-120-disk-0,iothread=1,size=8G"
    );
    assert_eq!(linked["name"], "linked");
    assert!(linked.get("template").is_none());
    let template = api.get("/nodes/pve/qemu/9000/config").await;
    assert_ne!(linked["net0"], template["net0"], "a clone gets a new MAC");
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "121"), ("full", "1"), ("storage", "local-lvm")],
        )
        .await;
    assert_eq!(exit, "OK");
    let full = api.get("/nodes/pve/qemu/121/config").await;
    assert_eq!(full["scsi0"], "local-lvm:vm-121-disk-0,iothread=1,size=8G");
    let (code, body) = api
        .call(
            Method::POST,
            "/nodes/pve/qemu/9000/clone",
            &[("newid", "121")],
        )
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 121: config file already exists\n"
    );
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/9000/status/start", &[])
        .await;
    assert_eq!(exit, "you can't start a vm if it's a template");
}

#[tokio::test]
async fn cloud_init_changes_are_pending_until_the_image_is_regenerated() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let exit = create_vm(
        &api,
        "113",
        &[
            ("ide2", "local-lvm:cloudinit"),
            ("ciuser", "ubuntu"),
            ("ipconfig0", "ip=10.9.8.7/24,gw=10.9.8.1"),
            ("sshkeys", "ssh-ed25519%20AAAAC3Nza%20me%40host"),
        ],
    )
    .await;
    assert_eq!(exit, "OK");
    assert_eq!(
        api.get("/nodes/pve/qemu/113/config").await["ide2"],
        "local-lvm:vm-113-cloudinit,media=cdrom"
    );
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    let ciuser = ci
        .as_array()
        .and_then(|l| l.iter().find(|e| e["key"] == "ciuser"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ciuser,
        json!({"key": "ciuser", "pending": "ubuntu"}),
        "never generated yet"
    );
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/113/status/start", &[])
            .await,
        "OK"
    );
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    assert!(
        ci.as_array()
            .is_some_and(|l| l.iter().all(|e| e.get("pending").is_none())),
        "{ci}"
    );
    let (code, _) = api
        .call(
            Method::PUT,
            "/nodes/pve/qemu/113/config",
            &[("ciuser", "admin")],
        )
        .await;
    assert_eq!(code, 200);
    let ci = api.get("/nodes/pve/qemu/113/cloudinit").await;
    let ciuser = ci
        .as_array()
        .and_then(|l| l.iter().find(|e| e["key"] == "ciuser"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ciuser,
        json!({"key": "ciuser", "value": "ubuntu", "pending": "admin"})
    );
    let (code, _) = api
        .call(Method::PUT, "/nodes/pve/qemu/113/cloudinit", &[])
        .await;
    assert_eq!(code, 200);
    let user = api
        .get("/nodes/pve/qemu/113/cloudinit/dump?type=user")
        .await;
    let user = user.as_str().unwrap_or_default();
    assert!(user.starts_with("#cloud-config\n"), "{user}");
    assert!(user.contains("user: admin\n"), "{user}");
    assert!(
        user.contains("  - ssh-ed25519 AAAAC3Nza me@host\n"),
        "{user}"
    );
    let network = api
        .get("/nodes/pve/qemu/113/cloudinit/dump?type=network")
        .await;
    let network = network.as_str().unwrap_or_default();
    assert!(network.contains("address: '10.9.8.7'"), "{network}");
    assert!(network.contains("netmask: '255.255.255.0'"), "{network}");
    assert!(network.contains("gateway: '10.9.8.1'"), "{network}");
}

/// Moves the simulator's clock forward (tickets age, guests boot) without waiting.
async fn advance_clock(sim: &pve_sim::RunningSim, secs: u64) {
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

#[tokio::test]
async fn guest_agent_reports_addresses_of_running_vms_with_the_agent_enabled() {
    // The guest boots for a minute of simulated time, so that "still booting" does not depend
    // on how fast this machine gets from the start to the next request.
    let mut config = fast_config();
    config.agent_boot_delay_ms = 60_000;
    let sim = start_with(config, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(
        create_vm(
            &api,
            "109",
            &[("agent", "1"), ("ipconfig0", "ip=10.1.2.3/24,gw=10.1.2.1")]
        )
        .await,
        "OK"
    );
    // qemu-server's assert_agent_available, in order: an agent key, a running VM, an agent
    // that answers.
    assert_eq!(create_vm(&api, "108", &[]).await, "OK");
    let (code, body) = api
        .call(
            Method::GET,
            "/nodes/pve/qemu/108/agent/network-get-interfaces",
            &[],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!("No QEMU guest agent configured\n"))
    );
    let path = "/nodes/pve/qemu/109/agent/network-get-interfaces";
    let (code, body) = api.call(Method::GET, path, &[]).await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "VM 109 is not running\n");
    assert_eq!(
        api.run(Method::POST, "/nodes/pve/qemu/109/status/start", &[])
            .await,
        "OK"
    );
    let (code, body) = api.call(Method::GET, path, &[]).await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!("QEMU guest agent is not running\n")),
        "the guest is still booting"
    );
    advance_clock(&sim, 61).await;
    let data = api.get(path).await;
    let eth0 = data["result"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == "eth0"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(eth0["ip-addresses"][0]["ip-address"], "10.1.2.3");
    assert_eq!(
        api.get("/nodes/pve/qemu/109/status/current").await["agent"],
        json!(1)
    );
}

// ------------------------------------------------------------------------------------------------
// Permissions

#[tokio::test]
async fn cluster_resources_and_vm_lists_are_filtered_by_privileges() {
    let sim = start().await;
    let root = Api::root(&sim).await;
    assert_eq!(create_vm(&root, "100", &[]).await, "OK");
    assert_eq!(create_vm(&root, "110", &[]).await, "OK");
    sim.with_state(|s| s.access.user_passwd("alice@pve", "alicepw"))
        .expect("password");
    let alice = Api::login(&sim, "alice@pve", "alicepw").await;
    let vms = alice.get("/cluster/resources?type=vm").await;
    let ids: Vec<Value> = vms
        .as_array()
        .map(|v| v.iter().map(|e| e["vmid"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![json!(100)]);
    let nodes = alice.get("/cluster/resources?type=node").await;
    assert_eq!(nodes[0]["node"], "pve");
    assert!(
        nodes[0].get("maxmem").is_none(),
        "no node stats without Sys.Audit"
    );
    assert_eq!(
        alice.get("/cluster/resources?type=storage").await,
        json!([])
    );
    let listed = alice.get("/nodes/pve/qemu").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let all = root.get("/cluster/resources").await;
    let types: BTreeSet<String> = all
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        types,
        // 9.1 (the default): SDN zones are `network` entries.
        ["network", "node", "pool", "qemu", "storage"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let (code, body) = alice
        .call(Method::GET, "/cluster/resources", &[("type", "pool")])
        .await;
    assert_eq!(code, 400);
    assert!(
        body["errors"]["type"]
            .as_str()
            .unwrap_or_default()
            .contains("enumeration")
    );
}

#[tokio::test]
async fn fresh_vms_show_as_unknown_in_cluster_resources_until_the_rrd_has_them() {
    let mut cfg = fast_config();
    cfg.rrd_delay_ms = 60_000;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "190", &[("tags", "k8s")]).await, "OK");
    let vms = api.get("/cluster/resources?type=vm").await;
    let fresh = vms
        .as_array()
        .and_then(|l| l.iter().find(|v| v["vmid"] == json!(190)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        fresh,
        json!({"id": "qemu/190", "vmid": 190, "node": "pve", "type": "qemu", "status": "unknown", "tags": "k8s"})
    );
    let template = vms
        .as_array()
        .and_then(|l| l.iter().find(|v| v["vmid"] == json!(9000)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        template["status"], "stopped",
        "VMs present at start have RRD data"
    );
}

#[tokio::test]
async fn create_checks_allocate_storage_bridge_and_per_option_privileges() {
    let sim = start().await;
    sim.with_state(|s| s.access.user_passwd("carol@pve", "carolpw"))
        .expect("password");
    sim.with_state(|s| s.access.user_passwd("alice@pve", "alicepw"))
        .expect("password");
    let carol = Api::login(&sim, "carol@pve", "carolpw").await;
    let alice = Api::login(&sim, "alice@pve", "alicepw").await;
    let (code, body) = alice
        .call(Method::POST, "/nodes/pve/qemu", &[("vmid", "100")])
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (403, json!("Permission check failed\n"))
    );
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("scsi0", "local:8")],
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (/storage/local, Datastore.AllocateSpace)\n"
    );
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("net0", "virtio,bridge=vmbr1")],
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (/sdn/zones/localnetwork/vmbr1, SDN.Use)\n"
    );
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("vga", "std")],
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (/vms/130, VM.Config.HWType)\n"
    );
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("args", "-foo")],
        )
        .await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], "only root can set 'args' config\n");
    // `affinity` is root-only too (in no option list of $check_vm_modify_config_perm).
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("affinity", "0-1")],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!("only root can set 'affinity' config\n"))
    );
    // 9.1's `allow-ksm` is a memory option: VM.Config.Memory, which carol has, suffices.
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "131"), ("allow-ksm", "0")],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let exit = carol
        .run(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "130"),
                ("memory", "1024"),
                ("cores", "1"),
                ("scsi0", "local-lvm:4"),
                ("net0", "virtio,bridge=vmbr0"),
            ],
        )
        .await;
    assert_eq!(exit, "OK");
    let (code, body) = carol
        .call(
            Method::POST,
            "/nodes/pve/qemu/130/status/start",
            &[("skiplock", "1")],
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["skiplock"], "Only root may use this option.");
}

#[tokio::test]
async fn vm_allocate_on_a_pool_lets_a_user_create_vms_in_that_pool() {
    let sim = start().await;
    sim.with_state(|s| s.access.user_passwd("dave@pve", "davepw"))
        .expect("password");
    let dave = Api::login(&sim, "dave@pve", "davepw").await;
    let pools: Vec<Value> = dave
        .get("/cluster/resources")
        .await
        .as_array()
        .map(|l| l.iter().filter(|e| e["type"] == "pool").cloned().collect())
        .unwrap_or_default();
    assert_eq!(pools, Vec::<Value>::new(), "pool entries need Pool.Audit");
    let (code, body) = dave
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "180"), ("pool", "nope")],
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (pool 'nope' does not exist)\n"
    );
    let (code, _) = dave
        .call(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "180"), ("cores", "2")],
        )
        .await;
    assert_eq!(code, 403, "no VM.Allocate on /vms/180 without the pool");
    let exit = dave
        .run(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "180"),
                ("pool", "dev"),
                ("cores", "2"),
                ("scsi0", "local-lvm:2"),
            ],
        )
        .await;
    assert_eq!(exit, "OK");
    let vms = dave.get("/cluster/resources?type=vm").await;
    assert_eq!(vms.as_array().map(Vec::len), Some(1), "{vms}");
    assert_eq!(vms[0]["pool"], "dev");
    assert_eq!(
        dave.run(Method::POST, "/nodes/pve/qemu/180/status/start", &[])
            .await,
        "OK"
    );
}

#[tokio::test]
async fn tasks_are_visible_to_their_owner_or_with_sys_audit() {
    let sim = start().await;
    sim.with_state(|s| s.access.user_passwd("carol@pve", "carolpw"))
        .expect("password");
    sim.with_state(|s| s.access.user_passwd("alice@pve", "alicepw"))
        .expect("password");
    let carol = Api::login(&sim, "carol@pve", "carolpw").await;
    let alice = Api::login(&sim, "alice@pve", "alicepw").await;
    let root = Api::root(&sim).await;
    let upid = carol
        .upid(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "131"), ("scsi0", "local-lvm:1")],
        )
        .await;
    assert!(upid.ends_with(":qmcreate:131:carol@pve:"));
    let status_path = format!("/nodes/pve/tasks/{}/status", urlencode(&upid));
    let (code, body) = alice.call(Method::GET, &status_path, &[]).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (/nodes/pve, Sys.Audit)\n"
    );
    let status = carol.wait_task(&upid).await;
    assert_eq!(status["user"], "carol@pve");
    assert_eq!(status["id"], json!("131"));
    assert!(status.get("endtime").is_none());
    root.wait_task(&upid).await;
    let (code, body) = root
        .call(Method::GET, "/nodes/pve/tasks/not-a-upid/status", &[])
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["upid"], "unable to parse worker upid");
    let cluster = carol.get("/cluster/tasks").await;
    assert_eq!(cluster.as_array().map(Vec::len), Some(1), "{cluster}");
    assert_eq!(cluster[0]["upid"], json!(upid));
    assert_eq!(cluster[0]["status"], "OK");
    assert_eq!(
        alice.get("/cluster/tasks").await,
        json!([]),
        "others' tasks are hidden"
    );
    let list = carol.call(Method::GET, "/nodes/pve/tasks", &[]).await.1;
    assert_eq!(list["total"], json!(1));
    assert_eq!(
        alice.call(Method::GET, "/nodes/pve/tasks", &[]).await.1["total"],
        json!(0)
    );
}

// ------------------------------------------------------------------------------------------------
// Simulator controls: faults, stats, state

async fn sim_put(sim: &RunningSim, path: &str, body: &Value) -> u16 {
    http_client(sim)
        .put(format!("{}{path}", sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("sim endpoint")
        .status()
        .as_u16()
}

async fn sim_get(sim: &RunningSim, path: &str) -> Value {
    http_client(sim)
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("sim endpoint")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn faults_inject_proxy_errors_lock_timeouts_task_failures_and_drops() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "140", &[]).await, "OK");
    let faults = json!({"seed": 1, "rules": [
        {"method": "GET", "path": "/version", "max_count": 1, "fault": {"kind": "proxy", "status": 596, "reason": "Connection timed out"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}},
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/status/start", "max_count": 1, "fault": {"kind": "task_failure", "message": "injected start failure"}},
        {"method": "GET", "path": "/cluster/status", "max_count": 1, "fault": {"kind": "drop"}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let (code, body) = api.call(Method::GET, "/version", &[]).await;
    assert_eq!((code, body), (596, Value::Null));
    let (code, _) = api.call(Method::GET, "/version", &[]).await;
    assert_eq!(code, 200, "max_count limits the fault");
    let (code, body) = api
        .call(Method::PUT, "/nodes/pve/qemu/140/config", &[("cores", "3")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "can't lock file '/var/lock/qemu-server/lock-140.conf' - got timeout\n"
    );
    let exit = api
        .run(Method::POST, "/nodes/pve/qemu/140/status/start", &[])
        .await;
    assert_eq!(exit, "injected start failure");
    let url = format!("{}/cluster/status", sim.url());
    let Auth::Ticket { ticket, .. } = &api.auth else {
        panic!("ticket auth expected");
    };
    let dropped = api
        .http
        .get(&url)
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection is dropped without an answer"
    );
    let fired = sim_get(&sim, "/_sim/faults").await;
    assert_eq!(fired["fired"], json!([1, 1, 1, 1]));
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(stats["faults_injected"], json!(4));
    assert_eq!(stats["responses_by_status"]["596"], json!(1));
}

#[tokio::test]
async fn latency_before_holds_the_request_back_and_latency_after_does_the_work_then_holds_the_answer()
 {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let faults = json!({"seed": 1, "rules": [
        {"method": "POST", "path": "/nodes/{node}/qemu", "fault": {"kind": "latency", "ms": 400}},
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/status/start", "fault": {"kind": "latency_after", "ms": 400}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let impatient = |api: &Api, path: &str, params: &[(&str, &str)]| {
        let Auth::Ticket { ticket, csrf } = &api.auth else {
            panic!("ticket auth expected");
        };
        api.http
            .post(format!("{}{path}", api.base))
            .header("Cookie", format!("PVEAuthCookie={ticket}"))
            .header("CSRFPreventionToken", csrf)
            .form(params)
            .timeout(Duration::from_millis(100))
            .send()
    };
    // Given up on while held back: not carried out.
    let gave_up = impatient(
        &api,
        "/nodes/pve/qemu",
        &[("vmid", "160"), ("memory", "512")],
    )
    .await;
    assert!(gave_up.is_err(), "no answer within 100 ms: {gave_up:?}");
    // A patient create, sent later and held back as long, is done only after the first one's
    // 400 ms have passed.
    assert_eq!(create_vm(&api, "162", &[]).await, "OK");
    assert!(
        !sim.with_state(|s| s.vms.contains_key(&160)),
        "a create given up on before it was carried out makes no VM"
    );
    // Given up on while its answer is held back: carried out all the same.
    assert_eq!(create_vm(&api, "161", &[]).await, "OK");
    let gave_up = impatient(&api, "/nodes/pve/qemu/161/status/start", &[]).await;
    assert!(gave_up.is_err(), "no answer within 100 ms: {gave_up:?}");
    let started = sim.with_state(|s| s.tasks.iter().any(|t| t.kind == "qmstart" && t.id == "161"));
    assert!(
        started,
        "the start task runs although its UPID never reached the client"
    );
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(stats["faults_injected"], json!(4), "{stats}");
}

#[tokio::test]
async fn seeded_error_rate_is_repeatable() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = start().await;
        let api = Api::root(&sim).await;
        let faults = json!({"seed": seed, "rules": [
            {"path": "/version", "rate": 0.5, "fault": {"kind": "error", "status": 503, "message": "busy"}}
        ]});
        assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
        let mut codes = Vec::new();
        for _ in 0..40 {
            codes.push(api.call(Method::GET, "/version", &[]).await.0);
        }
        codes
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    let errors = a.iter().filter(|c| **c == 503).count();
    assert!((5..35).contains(&errors), "{errors} of 40 failed");
}

#[tokio::test]
async fn stats_count_requests_per_endpoint_and_caller_and_tasks() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "150", &[]).await, "OK");
    api.get("/nodes/pve/qemu/150/config").await;
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(
        stats["requests_by_endpoint"]["POST /nodes/{node}/qemu"],
        json!(1)
    );
    assert_eq!(
        stats["requests_by_endpoint"]["GET /nodes/{node}/qemu/{vmid}/config"],
        json!(1)
    );
    assert!(
        stats["requests_by_caller"]["root@pam"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    );
    assert_eq!(stats["tasks_started"], json!(1));
    assert_eq!(stats["tasks_by_type"]["qmcreate"], json!(1));
    assert_eq!(stats["tasks_in_flight"], json!(0));
    assert_eq!(
        sim.stats().tasks_started,
        1,
        "the embedding API sees the same counters"
    );
}

#[tokio::test]
async fn state_persists_across_restarts_and_reset_returns_to_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let mut opts = SimOptions::new(ROOT_PW);
    opts.config = fast_config();
    opts.state_file = Some(path.clone());
    let sim = SimServer::start(opts.clone()).await.expect("starts");
    let fingerprint = sim.fingerprint().to_string();
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "160", &[]).await, "OK");
    sim.shutdown().await;
    assert!(path.is_file(), "state written");

    let sim = SimServer::start(opts).await.expect("restarts");
    assert_eq!(
        sim.fingerprint(),
        fingerprint,
        "the certificate survives a restart"
    );
    let api = Api {
        base: sim.url(),
        http: http_client(&sim),
        ..api
    };
    let conf = api.get("/nodes/pve/qemu/160/config").await;
    assert_eq!(
        conf["name"], "web-1",
        "the VM and the old ticket survive a restart"
    );
    let dump = sim_get(&sim, "/_sim/state").await;
    assert!(dump["vms"]["160"].is_object());
    assert!(dump.get("keys").is_none(), "secrets are not dumped");
    let reset = http_client(&sim)
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status().as_u16(), 200);
    let (code, _) = api
        .call(Method::GET, "/nodes/pve/qemu/160/config", &[])
        .await;
    assert_eq!(code, 500, "reset returns to the start state");
}

// ------------------------------------------------------------------------------------------------
// Read endpoints

#[tokio::test]
async fn a_two_node_cluster_keeps_vms_and_local_storage_per_node() {
    let mut cfg = ClusterConfig::from_yaml(
        "cluster_name: lab\n\
         nodes:\n  - {name: pve1, cpus: 8, memory: 16G, bridges: [vmbr0]}\n  - {name: pve2, cpus: 8, memory: 16G, bridges: [vmbr0]}\n\
         storages:\n  - {id: local-lvm, type: lvmthin, content: [images], capacity: 20G}\n  - {id: ceph, type: rbd, content: [images], capacity: 100G, shared: true}\n\
         isos: []\ntemplates: []\n",
    )
    .expect("valid config");
    cfg.task_durations_ms.create = 50;
    let sim = start_with(cfg, false).await;
    let api = Api::root(&sim).await;
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve2/qemu",
            &[("vmid", "200"), ("scsi0", "local-lvm:15")],
        )
        .await;
    assert_eq!(exit, "OK");
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve1/qemu",
            &[("vmid", "201"), ("scsi0", "local-lvm:15")],
        )
        .await;
    assert_eq!(exit, "OK", "local storage capacity is per node");
    let exit = api
        .run(
            Method::POST,
            "/nodes/pve1/qemu",
            &[("vmid", "202"), ("scsi0", "local-lvm:10")],
        )
        .await;
    assert!(exit.contains("does not have enough free space"), "{exit}");
    let (code, body) = api
        .call(Method::GET, "/nodes/pve1/qemu/200/config", &[])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist\n"
    );
    let (code, body) = api
        .call(Method::POST, "/nodes/pve1/qemu", &[("vmid", "200")])
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        "unable to create VM 200 - VM 200 already exists on node 'pve2'\n"
    );
    let status = api.get("/cluster/status").await;
    assert_eq!(status[0]["type"], "cluster");
    assert_eq!(status[0]["nodes"], json!(2));
    let storages = api.get("/cluster/resources?type=storage").await;
    assert_eq!(
        storages.as_array().map(Vec::len),
        Some(4),
        "one entry per storage and node"
    );
    let anon = Api::anonymous(&sim);
    let (_, login) = anon
        .call(
            Method::POST,
            "/access/ticket",
            &[("username", "root@pam"), ("password", ROOT_PW)],
        )
        .await;
    assert_eq!(login["data"]["clustername"], "lab");
}

#[tokio::test]
async fn read_endpoints_answer_like_pve() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    let v = api.get("/version").await;
    assert_eq!(
        v,
        json!({"version": "9.1.5", "release": "9.1", "repoid": "2b0c6e4f9a1d7c35"})
    );
    let status = api.get("/nodes/pve/status").await;
    assert_eq!(status["memory"]["total"], json!(64u64 << 30));
    let bridges = api.get("/nodes/pve/network?type=bridge").await;
    assert_eq!(bridges.as_array().map(Vec::len), Some(2));
    let storages = api.get("/nodes/pve/storage?content=images").await;
    assert_eq!(storages.as_array().map(Vec::len), Some(1));
    assert_eq!(storages[0]["storage"], "local-lvm");
    let (code, body) = api
        .call(Method::GET, "/nodes/pve/storage", &[("storage", "nope")])
        .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["storage"], "No such storage.");
    let status = api.get("/nodes/pve/storage/local-lvm/status").await;
    assert_eq!(status["total"], json!(2u64 << 40));
    assert_eq!(
        status["avail"]
            .as_u64()
            .zip(status["used"].as_u64())
            .map(|(a, u)| a + u),
        Some(2u64 << 40)
    );
    let defs = api.get("/storage").await;
    assert_eq!(defs.as_array().map(Vec::len), Some(2));
    assert_eq!(api.get("/storage/local-lvm").await["thinpool"], "data");
    let isos = api
        .get("/nodes/pve/storage/local/content?content=iso")
        .await;
    assert_eq!(
        isos[0]["volid"],
        "local:iso/debian-12.7.0-amd64-netinst.iso"
    );
    let cluster = api.get("/cluster/status").await;
    assert_eq!(cluster[0]["type"], "node");
}

#[tokio::test]
async fn odd_inputs_get_answers_not_crashes() {
    let sim = start().await;
    let api = Api::root(&sim).await;
    assert_eq!(create_vm(&api, "114", &[]).await, "OK");
    let odd = [
        "",
        ",",
        "=",
        "==,==",
        "local-lvm:",
        ":",
        "local-lvm:-1",
        "local-lvm:99999999999999999999",
        "ünïcödé",
        "virtio=zz:zz",
        "0.0000001",
        "+",
        "18446744073709551616",
    ];
    let keys = [
        "scsi1", "net1", "memory", "cores", "tags", "name", "ide2", "boot", "agent", "cpu",
    ];
    for value in odd {
        for key in keys {
            let (code, body) = api
                .call(Method::PUT, "/nodes/pve/qemu/114/config", &[(key, value)])
                .await;
            assert!(
                code == 200 || (400..=599).contains(&code),
                "{key}={value:?}: {code} {body}"
            );
        }
        for (method, path, params) in [
            (
                Method::PUT,
                "/nodes/pve/qemu/114/resize",
                vec![("disk", "scsi0"), ("size", value)],
            ),
            (
                Method::POST,
                "/nodes/pve/qemu/114/clone",
                vec![("newid", value)],
            ),
            (
                Method::POST,
                "/nodes/pve/qemu",
                vec![("vmid", "115"), ("scsi0", value)],
            ),
            (Method::GET, "/cluster/nextid", vec![("vmid", value)]),
            (Method::GET, "/nodes/pve/tasks", vec![("limit", value)]),
        ] {
            let (code, body) = api.call(method, path, &params).await;
            assert!(
                code == 200 || (400..=599).contains(&code),
                "{path} {value:?}: {code} {body}"
            );
        }
    }
    let (code, _) = api.call(Method::GET, "/version", &[]).await;
    assert_eq!(code, 200, "the simulator still answers");
}

// ------------------------------------------------------------------------------------------------
// Conformance with the published schema

/// The published API schema of `version` (reference material).
fn schema_file(version: PveVersion) -> &'static str {
    match version {
        PveVersion::Pve8_4 => "pve-8.4-api-schema.json",
        PveVersion::Pve9_1 => "pve-9-api-schema.json",
    }
}

fn schema_index(version: PveVersion) -> std::collections::HashMap<String, Value> {
    let path = reference_dir().join(schema_file(version));
    let text = std::fs::read_to_string(&path).expect("schema readable");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut idx = std::collections::HashMap::new();
    fn walk(n: &Value, idx: &mut std::collections::HashMap<String, Value>) {
        if let Some(p) = n["path"].as_str() {
            idx.insert(p.to_string(), n.clone());
        }
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, idx);
        }
    }
    for n in schema["tree"].as_array().into_iter().flatten() {
        walk(n, &mut idx);
    }
    idx
}

fn compare_param(
    route: &str,
    name: &str,
    rule: &pve_sim::params::Param,
    schema: &Value,
    problems: &mut Vec<String>,
) {
    use pve_sim::params::{Format, Ty};
    let mut bad = |what: &str| problems.push(format!("{route} {name}: {what}"));
    let ty = match rule.ty {
        Ty::String => "string",
        Ty::Integer => "integer",
        Ty::Number => "number",
        Ty::Boolean => "boolean",
    };
    if schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
        != ty
    {
        bad("type");
    }
    if schema.get("optional").and_then(Value::as_u64).unwrap_or(0) == 1 && !rule.optional {
        bad("optional");
    }
    // Perl sometimes serialises limits as strings ("minimum": "0").
    let num = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.parse::<f64>().ok(),
        Some(v) => v.as_f64(),
        None => None,
    };
    if num(schema.get("minimum")) != rule.minimum {
        bad("minimum");
    }
    if num(schema.get("maximum")) != rule.maximum {
        bad("maximum");
    }
    if schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        != rule.max_length
    {
        bad("maxLength");
    }
    if schema.get("pattern").and_then(Value::as_str) != rule.pattern {
        bad("pattern");
    }
    let enumeration: Vec<String> = schema["enum"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    if enumeration
        != rule
            .enumeration
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    {
        bad("enum");
    }
    match (&schema["format"], rule.format) {
        (Value::Null, Format::None) => {}
        (Value::String(f), Format::Named(n)) if f == n => {}
        (Value::Object(subs), Format::Props(rules)) => {
            let names: BTreeSet<&str> = subs.keys().map(String::as_str).collect();
            let ours: BTreeSet<&str> = rules.iter().map(|r| r.name).collect();
            if names != ours {
                bad("property-string keys");
            }
            for r in rules {
                if let Some(s) = subs.get(r.name) {
                    compare_param(route, &format!("{name}.{}", r.name), r, s, problems);
                }
            }
        }
        _ => bad("format"),
    }
}

#[tokio::test]
async fn every_served_endpoint_has_the_schema_parameter_rules_of_each_version() {
    for version in PveVersion::ALL {
        served_endpoints_have_the_schema_parameter_rules(version);
    }
}

/// Each route's parameter table for `version` against `version`'s published schema.
fn served_endpoints_have_the_schema_parameter_rules(version: PveVersion) {
    let idx = schema_index(version);
    let router = pve_sim::router::Router::build();
    let mut problems = Vec::new();
    let mut checked = 0;
    for route in router.routes() {
        let id = format!("{version}: {} {}", route.method, route.path);
        if route.path == "/" {
            continue;
        }
        let Some(info) = idx
            .get(route.path)
            .and_then(|n| n["info"].get(route.method))
        else {
            problems.push(format!("{id}: not in the PVE {version} schema"));
            continue;
        };
        let Some(rules) = route.params_for(version) else {
            problems.push(format!("{id}: no parameter table"));
            continue;
        };
        let props = info["parameters"]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let names: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        let ours: BTreeSet<&str> = rules.iter().map(|r| r.name).collect();
        if names != ours {
            problems.push(format!(
                "{id}: parameters differ: schema-only {:?}, sim-only {:?}",
                names.difference(&ours).collect::<Vec<_>>(),
                ours.difference(&names).collect::<Vec<_>>()
            ));
        }
        for rule in rules {
            if let Some(s) = props.get(rule.name) {
                compare_param(&id, rule.name, rule, s, &mut problems);
            }
        }
        let allowtoken = info.get("allowtoken").and_then(Value::as_u64).unwrap_or(1) == 1;
        if allowtoken != route.allow_token {
            problems.push(format!("{id}: allowtoken differs"));
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked >= 35, "{version}: only {checked} endpoints checked");
}

/// Whether a returned value fits the schema type of its property. Perl booleans are 0/1 numbers.
fn json_type_fits(spec: &Value, value: &Value) -> bool {
    match spec["type"].as_str() {
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean() || value.as_u64().is_some_and(|v| v <= 1),
        Some("string") => value.is_string(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    }
}

#[tokio::test]
async fn responses_of_read_endpoints_have_the_8_4_schema_return_types() {
    read_responses_have_the_schema_return_types(PveVersion::Pve8_4).await;
}

#[tokio::test]
async fn responses_of_read_endpoints_have_the_9_1_schema_return_types() {
    read_responses_have_the_schema_return_types(PveVersion::Pve9_1).await;
}

/// The read endpoints' answers of a `version` simulator against `version`'s `returns`.
async fn read_responses_have_the_schema_return_types(version: PveVersion) {
    let idx = schema_index(version);
    let sim = start_with(config_of(version), false).await;
    let api = Api::root(&sim).await;
    assert_eq!(
        create_vm(
            &api,
            "170",
            &[("agent", "1"), ("start", "1"), ("ciuser", "u")]
        )
        .await,
        "OK"
    );
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/170/status/reset", &[])
        .await;
    api.wait_task(&upid).await;
    advance_clock(&sim, 5).await; // the guest agent answers once the guest has booted
    let enc = urlencode(&upid);
    let calls: Vec<(&str, String)> = vec![
        ("/version", "/version".into()),
        ("/nodes", "/nodes".into()),
        ("/nodes/{node}", "/nodes/pve".into()),
        ("/nodes/{node}/status", "/nodes/pve/status".into()),
        ("/nodes/{node}/network", "/nodes/pve/network".into()),
        ("/nodes/{node}/storage", "/nodes/pve/storage".into()),
        (
            "/nodes/{node}/storage/{storage}/content",
            "/nodes/pve/storage/local-lvm/content".into(),
        ),
        ("/storage", "/storage".into()),
        ("/storage/{storage}", "/storage/local-lvm".into()),
        (
            "/nodes/{node}/storage/{storage}",
            "/nodes/pve/storage/local-lvm".into(),
        ),
        (
            "/nodes/{node}/storage/{storage}/status",
            "/nodes/pve/storage/local-lvm/status".into(),
        ),
        ("/cluster", "/cluster".into()),
        ("/cluster/resources", "/cluster/resources".into()),
        ("/cluster/status", "/cluster/status".into()),
        ("/cluster/nextid", "/cluster/nextid".into()),
        ("/cluster/tasks", "/cluster/tasks".into()),
        ("/nodes/{node}/qemu", "/nodes/pve/qemu".into()),
        ("/nodes/{node}/qemu/{vmid}", "/nodes/pve/qemu/170".into()),
        (
            "/nodes/{node}/qemu/{vmid}/config",
            "/nodes/pve/qemu/170/config".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/pending",
            "/nodes/pve/qemu/170/pending".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/status",
            "/nodes/pve/qemu/170/status".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/status/current",
            "/nodes/pve/qemu/170/status/current".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
            "/nodes/pve/qemu/170/agent/network-get-interfaces".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/cloudinit",
            "/nodes/pve/qemu/170/cloudinit".into(),
        ),
        (
            "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
            "/nodes/pve/qemu/170/cloudinit/dump?type=network".into(),
        ),
        ("/nodes/{node}/tasks", "/nodes/pve/tasks".into()),
        (
            "/nodes/{node}/tasks/{upid}",
            format!("/nodes/pve/tasks/{enc}"),
        ),
        (
            "/nodes/{node}/tasks/{upid}/status",
            format!("/nodes/pve/tasks/{enc}/status"),
        ),
        (
            "/nodes/{node}/tasks/{upid}/log",
            format!("/nodes/pve/tasks/{enc}/log"),
        ),
    ];
    let mut problems = Vec::new();
    for (template, path) in calls {
        let data = api.get(&path).await;
        let returns = &idx[template]["info"]["GET"]["returns"];
        let want = returns["type"].as_str().unwrap_or("null");
        let got = match &data {
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        };
        // nextid: the schema says integer, real PVE sends a string (wire-behaviour.md section 3).
        let perl_string = template == "/cluster/nextid" && got == "string";
        if want != got && !perl_string {
            problems.push(format!(
                "{version}: {template}: returns {got}, schema says {want}"
            ));
            continue;
        }
        // Required properties of object items (or the object) must be present.
        let (item_schema, items): (&Value, Vec<&Value>) = match &data {
            Value::Array(list) => (&returns["items"], list.iter().collect()),
            other => (returns, vec![other]),
        };
        if let Some(props) = item_schema["properties"].as_object() {
            for item in items {
                for (name, spec) in props {
                    let optional = spec.get("optional").and_then(Value::as_u64).unwrap_or(0) == 1;
                    if !optional && item.get(name).is_none() {
                        problems.push(format!(
                            "{version}: {template}: required property '{name}' missing in {item}"
                        ));
                    }
                    // `/pending` values come from the typed config (integers are numbers on the
                    // wire, as in GET config) although the schema calls them strings.
                    let typed_config_value =
                        template.ends_with("/pending") && (name == "value" || name == "pending");
                    if let Some(value) = item.get(name)
                        && !typed_config_value
                        && !json_type_fits(spec, value)
                    {
                        problems.push(format!(
                            "{version}: {template}: property '{name}' = {value} does not fit {}",
                            spec["type"]
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// Parameters of each version (pve9-changes.md sections 4.2 and 6)

/// Starts a `version` simulator and logs in as root.
async fn start_version(version: PveVersion) -> (RunningSim, Api) {
    let sim = start_with(config_of(version), false).await;
    let api = Api::root(&sim).await;
    (sim, api)
}

/// `POST /nodes/pve/qemu` with `vmid` and `params`: the status and the body.
async fn try_create(api: &Api, vmid: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("vmid", vmid)];
    all.extend_from_slice(params);
    api.call(Method::POST, "/nodes/pve/qemu", &all).await
}

const NOT_IN_SCHEMA: &str =
    "property is not defined in schema and the schema does not allow additional properties";

#[tokio::test]
async fn disk_geometry_options_are_refused_by_9_1_and_accepted_by_8_4() {
    let (_old, api8) = start_version(PveVersion::Pve8_4).await;
    assert_eq!(
        create_vm(&api8, "120", &[("scsi0", "local-lvm:8,cyls=1")]).await,
        "OK"
    );
    let config = api8.get("/nodes/pve/qemu/120/config").await;
    assert_eq!(config["scsi0"], "local-lvm:vm-120-disk-0,cyls=1,size=8G");

    let (_new, api9) = start_version(PveVersion::Pve9_1).await;
    for (key, value, option) in [
        ("scsi0", "local-lvm:8,cyls=1", "cyls"),
        ("virtio0", "local-lvm:8,heads=16", "heads"),
        ("sata0", "local-lvm:8,secs=63", "secs"),
        ("ide0", "local-lvm:8,trans=lba", "trans"),
    ] {
        let (code, body) = try_create(&api9, "120", &[(key, value)]).await;
        assert_eq!(code, 400, "{key}={value}: {body}");
        assert_eq!(body["message"], "Parameter verification failed.\n");
        assert_eq!(
            body["errors"][key],
            format!("invalid format - invalid key in comma-separated list property: {option}\n"),
            "{key}={value}"
        );
    }
    let (code, body) = api9
        .call(Method::GET, "/nodes/pve/qemu/120/config", &[])
        .await;
    assert_eq!(code, 500, "no VM was created: {body}");
    assert_eq!(
        create_vm(&api9, "120", &[("scsi0", "local-lvm:8")]).await,
        "OK"
    );
}

#[tokio::test]
async fn options_new_in_9_1_are_accepted_by_9_1_and_unknown_to_8_4() {
    let new_options: [(&str, &str); 4] = [
        ("allow-ksm", "0"),
        ("ha-managed", "0"),
        ("agent", "1,freeze-fs=0"),
        ("tpmstate0", "local-lvm:1,format=raw,version=v2.0"),
    ];
    let (_old, api8) = start_version(PveVersion::Pve8_4).await;
    let (code, body) = try_create(&api8, "130", &new_options).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"]["allow-ksm"], NOT_IN_SCHEMA);
    assert_eq!(body["errors"]["ha-managed"], NOT_IN_SCHEMA);
    assert_eq!(
        body["errors"]["agent"],
        "invalid format - invalid key in comma-separated list property: freeze-fs\n"
    );
    assert_eq!(
        body["errors"]["tpmstate0"],
        "invalid format - invalid key in comma-separated list property: format\n"
    );
    let (code, body) = api8
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("allow-ksm", "0")],
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"]["allow-ksm"], NOT_IN_SCHEMA);

    let (_new, api9) = start_version(PveVersion::Pve9_1).await;
    assert_eq!(create_vm(&api9, "130", &new_options).await, "OK");
    let config = api9.get("/nodes/pve/qemu/130/config").await;
    assert_eq!(
        config["allow-ksm"],
        json!(0),
        "a boolean is a number: {config}"
    );
    assert_eq!(config["agent"], "1,freeze-fs=0");
    assert!(
        config.get("ha-managed").is_none(),
        "ha-managed is not a config option: {config}"
    );
    assert_eq!(
        api9.run(
            Method::POST,
            "/nodes/pve/qemu/130/config",
            &[("allow-ksm", "1")]
        )
        .await,
        "OK"
    );
    assert_eq!(
        api9.get("/nodes/pve/qemu/130/config").await["allow-ksm"],
        json!(1)
    );
    // `ha-managed` is a create option only.
    let (code, body) = api9
        .call(
            Method::PUT,
            "/nodes/pve/qemu/130/config",
            &[("ha-managed", "1")],
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"]["ha-managed"], NOT_IN_SCHEMA);
}

#[tokio::test]
async fn the_requires_error_has_each_versions_text() {
    for (version, text) in [
        (
            PveVersion::Pve8_4,
            "missing property - 'force' requires this property",
        ),
        (PveVersion::Pve9_1, "missing property required by 'force'"),
    ] {
        let (_sim, api) = start_version(version).await;
        assert_eq!(create_vm(&api, "140", &[]).await, "OK", "{version}");
        let (code, body) = api
            .call(Method::PUT, "/nodes/pve/qemu/140/config", &[("force", "1")])
            .await;
        assert_eq!(code, 400, "{version}: {body}");
        assert_eq!(body["errors"]["delete"], text, "{version}: {body}");
        let (code, body) = api
            .call(Method::PUT, "/access/users/root@pam", &[("append", "1")])
            .await;
        assert_eq!(code, 400, "{version}: {body}");
        assert_eq!(
            body["errors"]["groups"],
            text.replace("force", "append"),
            "{version}: {body}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The PVE 9.1 profile (and 8.4 where it differs)

/// Users for the version tests: erin may only use the guest agent without restriction (a 9.1
/// privilege: 8.4 drops it from the role), frank may create VMs but not power them, carol may
/// use the CPU mappings.
const VERSION_USERS: &str = "\
user:erin@pve:1:0:::::
role:AgentOnly:VM.GuestAgent.Unrestricted:
acl:1:/vms:erin@pve:AgentOnly:
user:frank@pve:1:0:::::
role:NoPower:VM.Allocate,VM.Audit,VM.Config.Memory,VM.Config.Options:
acl:1:/vms:frank@pve:NoPower:
acl:1:/mapping/cpu:carol@pve:PVEMappingUser:
acl:1:/vms/100:frank@pve:PVEVMAdmin:
";

/// The fast configuration as `version`, with the version tests' users.
fn config_with_users(version: pve_sim::PveVersion) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.pve_version = version;
    cfg.user_cfg = Some(format!("{USER_CFG}{VERSION_USERS}"));
    cfg
}

/// Logs in `user@pve` after giving it a password.
async fn login_as(sim: &RunningSim, user: &str) -> Api {
    let userid = format!("{user}@pve");
    sim.with_state(|s| s.access.user_passwd(&userid, "pw-of-a-user"))
        .expect("password");
    Api::login(sim, &userid, "pw-of-a-user").await
}

#[tokio::test]
async fn agent_calls_need_vm_monitor_on_8_4_and_a_guest_agent_privilege_on_9_1() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    let path = "/nodes/pve/qemu/100/agent/network-get-interfaces";
    let not_running = json!("VM 100 is not running\n");
    let denied = |privs: &str| json!(format!("Permission check failed (/vms/100, {privs})\n"));
    for version in [Pve8_4, Pve9_1] {
        let sim = start_with(config_with_users(version), false).await;
        let root = Api::root(&sim).await;
        assert_eq!(create_vm(&root, "100", &[("agent", "1")]).await, "OK");
        // alice: PVEVMUser on /vms/100 (VM.GuestAgent.Audit on 9.1, no VM.Monitor on 8.4);
        // carol: her own role without either; erin: VM.GuestAgent.Unrestricted only (9.1).
        let mut answers = Vec::new();
        for user in ["alice", "carol", "erin"] {
            let (code, body) = login_as(&sim, user)
                .await
                .call(Method::GET, path, &[])
                .await;
            answers.push((user, code, body["message"].clone()));
        }
        let expected = match version {
            Pve8_4 => vec![
                ("alice", 403, denied("VM.Monitor")),
                ("carol", 403, denied("VM.Monitor")),
                ("erin", 403, denied("VM.Monitor")),
            ],
            Pve9_1 => {
                let any = denied("VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted");
                vec![
                    ("alice", 500, not_running.clone()),
                    ("carol", 403, any),
                    ("erin", 500, not_running.clone()),
                ]
            }
        };
        assert_eq!(answers, expected, "{version}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn create_with_start_needs_power_mgmt_up_front_on_9_1_only() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let sim = start_with(config_with_users(version), false).await;
        let frank = login_as(&sim, "frank").await;
        let params = [("vmid", "150"), ("memory", "512"), ("start", "1")];
        let (code, body) = frank.call(Method::POST, "/nodes/pve/qemu", &params).await;
        match version {
            Pve8_4 => {
                assert_eq!(code, 200, "8.4's worker starts without the check: {body}");
                let upid = body["data"].as_str().unwrap_or_default();
                assert_eq!(frank.wait_task(upid).await["exitstatus"], "OK");
            }
            Pve9_1 => {
                assert_eq!(
                    (code, body["message"].clone()),
                    (
                        403,
                        json!("Permission check failed (/vms/150, VM.PowerMgmt)\n")
                    )
                );
                assert!(
                    sim.with_state(|s| !s.vms.contains_key(&150)),
                    "refused before anything was created"
                );
                let exit = frank
                    .run(
                        Method::POST,
                        "/nodes/pve/qemu",
                        &[("vmid", "150"), ("memory", "512")],
                    )
                    .await;
                assert_eq!(exit, "OK", "without start=1 VM.Allocate is enough");
            }
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn create_normalises_tags_on_9_1_and_stores_them_verbatim_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for (version, want) in [(Pve8_4, "Web;db;WEB"), (Pve9_1, "db;web")] {
        let sim = start_with(config_with_users(version), false).await;
        let root = Api::root(&sim).await;
        assert_eq!(
            create_vm(&root, "160", &[("tags", "Web;db;WEB")]).await,
            "OK"
        );
        let config = root.get("/nodes/pve/qemu/160/config").await;
        assert_eq!(config["tags"], json!(want), "{version}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_custom_cpu_model_needs_mapping_use_on_9_1_and_sys_audit_on_nodes_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let sim = start_with(config_with_users(version), false).await;
        // carol: VM.Config.CPU on /vms, PVEMappingUser on /mapping/cpu, no Sys.Audit on /nodes;
        // alice: PVEVMUser on /vms/100, which has no VM.Config.CPU.
        let carol = login_as(&sim, "carol").await;
        let (code, body) = carol
            .call(
                Method::POST,
                "/nodes/pve/qemu",
                &[("vmid", "190"), ("cpu", "custom-fast,flags=+aes")],
            )
            .await;
        match version {
            Pve8_4 => assert_eq!(
                (code, body["message"].clone()),
                (403, json!("Permission check failed (/nodes, Sys.Audit)\n"))
            ),
            Pve9_1 => {
                assert_eq!(code, 200, "the mapping ACL is enough: {body}");
                let upid = body["data"].as_str().unwrap_or_default();
                assert_eq!(carol.wait_task(upid).await["exitstatus"], "OK");
            }
        }
        sim.shutdown().await;
    }
    let sim = start_with(config_with_users(Pve9_1), false).await;
    let root = Api::root(&sim).await;
    assert_eq!(
        create_vm(&root, "100", &[("cpu", "custom-fast")]).await,
        "OK"
    );
    // frank: PVEVMAdmin on /vms/100 (VM.Config.CPU), no CPU mapping.
    let frank = login_as(&sim, "frank").await;
    let (code, body) = frank
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("cpu", "custom-fast,flags=+aes")],
        )
        .await;
    assert_eq!(code, 200, "the model did not change: {body}");
    let (code, body) = frank
        .call(
            Method::PUT,
            "/nodes/pve/qemu/100/config",
            &[("cpu", "custom-slow")],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (
            403,
            json!("Permission check failed (/mapping/cpu/slow, Mapping.Use)\n")
        )
    );
    sim.shutdown().await;
}

/// A started VM 170 whose stop task holds its config flock far longer than the flock timeout.
async fn vm_with_a_long_held_flock(version: pve_sim::PveVersion) -> (RunningSim, Api) {
    let mut cfg = config_with_users(version);
    cfg.flock_timeout_ms = 300;
    cfg.task_durations_ms.stop = 60_000;
    let sim = start_with(cfg, false).await;
    let root = Api::root(&sim).await;
    assert_eq!(create_vm(&root, "170", &[("start", "1")]).await, "OK");
    root.upid(Method::POST, "/nodes/pve/qemu/170/status/stop", &[])
        .await;
    (sim, root)
}

const LOCK_TIMEOUT_170: &str =
    "can't lock file '/var/lock/qemu-server/lock-170.conf' - got timeout";

#[tokio::test]
async fn post_config_flock_timeout_is_a_task_failure_on_9_1_and_a_500_on_8_4() {
    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve9_1).await;
    let exit = root
        .run(
            Method::POST,
            "/nodes/pve/qemu/170/config",
            &[("cores", "3")],
        )
        .await;
    assert_eq!(exit, LOCK_TIMEOUT_170);
    let (code, body) = root
        .call(Method::PUT, "/nodes/pve/qemu/170/config", &[("cores", "3")])
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!(format!("{LOCK_TIMEOUT_170}\n"))),
        "PUT still locks in the API worker"
    );
    let config = root.get("/nodes/pve/qemu/170/config").await;
    assert_eq!(config["cores"], json!(2), "nothing was changed");
    sim.shutdown().await;

    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve8_4).await;
    let (code, body) = root
        .call(
            Method::POST,
            "/nodes/pve/qemu/170/config",
            &[("cores", "3")],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (500, json!(format!("{LOCK_TIMEOUT_170}\n")))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn post_config_checks_still_answer_synchronously_on_9_1() {
    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve9_1).await;
    let (code, body) = root
        .call(
            Method::POST,
            "/nodes/pve/qemu/170/config",
            &[("cores", "3"), ("digest", "0000")],
        )
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (
            500,
            json!("checksum mismatch (file change by other user?)\n")
        )
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lock_timeout_fault_on_post_config_fails_the_task_on_9_1() {
    let mut cfg = config_with_users(pve_sim::PveVersion::Pve9_1);
    cfg.flock_timeout_ms = 200;
    let sim = start_with(cfg, false).await;
    let root = Api::root(&sim).await;
    assert_eq!(create_vm(&root, "140", &[]).await, "OK");
    let faults = json!({"seed": 1, "rules": [
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let exit = root
        .run(
            Method::POST,
            "/nodes/pve/qemu/140/config",
            &[("cores", "3")],
        )
        .await;
    assert_eq!(
        exit,
        "can't lock file '/var/lock/qemu-server/lock-140.conf' - got timeout"
    );
    let config = root.get("/nodes/pve/qemu/140/config").await;
    assert_eq!(config["cores"], json!(2), "the task changed nothing");
    let (code, body) = root
        .call(Method::PUT, "/nodes/pve/qemu/140/config", &[("cores", "3")])
        .await;
    assert_eq!(
        (code, body["message"].clone()),
        (
            500,
            json!("can't lock file '/var/lock/qemu-server/lock-140.conf' - got timeout\n")
        )
    );
    let exit = root
        .run(
            Method::POST,
            "/nodes/pve/qemu/140/config",
            &[("cores", "3")],
        )
        .await;
    assert_eq!(exit, "OK", "the rule fired once");
    assert_eq!(
        root.get("/nodes/pve/qemu/140/config").await["cores"],
        json!(3)
    );
    assert_eq!(sim_get(&sim, "/_sim/faults").await["fired"], json!([1, 1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn cluster_resources_have_network_entries_and_memhost_on_9_1_and_sdn_entries_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let sim = start_with(config_with_users(version), false).await;
        let root = Api::root(&sim).await;
        assert_eq!(create_vm(&root, "180", &[("start", "1")]).await, "OK");
        let all = root.get("/cluster/resources").await;
        let entries = all.as_array().cloned().unwrap_or_default();
        let of_type = |t: &str| -> Vec<Value> {
            entries.iter().filter(|e| e["type"] == t).cloned().collect()
        };
        let vm = root.get("/cluster/resources?type=vm").await;
        let vm180 = vm
            .as_array()
            .and_then(|l| l.iter().find(|e| e["vmid"] == 180))
            .cloned()
            .unwrap_or_default();
        let current = root.get("/nodes/pve/qemu/180/status/current").await;
        let listed = root.get("/nodes/pve/qemu").await;
        let listed180 = listed
            .as_array()
            .and_then(|l| l.iter().find(|e| e["vmid"] == 180))
            .cloned()
            .unwrap_or_default();
        let sdn = root.get("/cluster/resources?type=sdn").await;
        let (code, _) = root
            .call(Method::GET, "/cluster/resources", &[("type", "network")])
            .await;
        assert_eq!(code, 400, "{version}: the type enum has no 'network'");
        match version {
            Pve8_4 => {
                assert_eq!(of_type("network"), Vec::<Value>::new());
                assert_eq!(of_type("sdn").len(), 1);
                assert_eq!(sdn.as_array().map(Vec::len), Some(1));
                assert_eq!(sdn[0]["id"], "sdn/pve/localnetwork");
                for entry in [&vm180, &current, &listed180] {
                    assert!(entry.get("mem").is_some(), "{entry}");
                    assert!(
                        entry.get("memhost").is_none(),
                        "8.4 has no memhost: {entry}"
                    );
                }
            }
            Pve9_1 => {
                assert_eq!(of_type("sdn"), Vec::<Value>::new());
                assert_eq!(
                    of_type("network"),
                    vec![json!({
                        "id": "network/pve/zone/localnetwork",
                        "type": "network",
                        "network-type": "zone",
                        "network": "localnetwork",
                        "node": "pve",
                        "status": "ok",
                    })]
                );
                assert_eq!(sdn, json!([]), "upgraded nodes have no sdn entries");
                for entry in [&vm180, &current, &listed180] {
                    assert!(
                        entry["memhost"].as_u64().is_some_and(|m| m > 0),
                        "a running VM's memhost: {entry}"
                    );
                }
            }
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn network_entries_need_sdn_audit_on_the_zone() {
    let sim = start_with(config_with_users(pve_sim::PveVersion::Pve9_1), false).await;
    let networks = |all: &Value| {
        all.as_array()
            .map(|l| l.iter().filter(|e| e["type"] == "network").count())
    };
    let root = Api::root(&sim).await;
    assert_eq!(networks(&root.get("/cluster/resources").await), Some(1));
    // alice has PVEVMUser on /vms/100 only: no SDN.Audit on /sdn/zones/localnetwork.
    let alice = login_as(&sim, "alice").await;
    let all = alice.get("/cluster/resources").await;
    assert_eq!(networks(&all), Some(0), "{all}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pve9_answers_auth_failures_with_the_unified_text() {
    let sim = start_with(config_with_users(pve_sim::PveVersion::Pve9_1), true).await;
    let forged = "Cookie: PVEAuthCookie=PVE:root@pam:65000000::Zm9yZ2Vk\r\n";
    let (code, reason, _, body) = raw(&sim, &get_request("/version", forged)).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "Authentication failed!", "")
    );
    let token = "Authorization: PVEAPIToken=root@pam!nope=abc\r\n";
    let (code, reason, _, _) = raw(&sim, &get_request("/version", token)).await;
    assert_eq!((code, reason.as_str()), (401, "Authentication failed!"));
    let (_, _, _, body) = raw(
        &sim,
        &get_request(
            "/version",
            &format!(
                "Cookie: PVEAuthCookie={}\r\n",
                Api::root(&sim).await.ticket()
            ),
        ),
    )
    .await;
    let version: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(version["data"]["release"], "9.1");
}
