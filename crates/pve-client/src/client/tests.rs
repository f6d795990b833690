//! Transport-level unit tests against a canned loopback server (auth flows, CSRF, retries,
//! both error styles, TLS trust modes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::config::{Fingerprint, TlsTrust};
use crate::error::ErrorKind;
use crate::request::Params;
use crate::testing::{self, Canned, MockServer, Recorded};

const TOKEN_SECRET: &str = "5f2b1c3a-aaaa-bbbb-cccc-0123456789ab";
const PASSWORD: &str = "correct-horse-battery";

fn token_config(url: &str) -> PveConfig {
    testing::token_config(url, "omni@pve!omni-provider", TOKEN_SECRET)
}

fn password_config(url: &str) -> PveConfig {
    testing::password_config(url, "omni@pve", PASSWORD)
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        retry: testing::quick_retries(3, 5),
        ..ClientOptions::default()
    }
}

fn get(path: &'static str) -> ApiRequest {
    ApiRequest::new(Method::Get, path, &[], Params::new())
}

fn post(path: &'static str, params: Params) -> ApiRequest {
    ApiRequest::new(Method::Post, path, &[], params)
}

/// `n` concurrent `GET /version` calls on `client`, each on its own task.
fn spawn_versions(
    client: &PveClient,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<ApiResponse>>> {
    (0..n)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.execute(&get("/version")).await })
        })
        .collect()
}

/// Waits for every spawned call and asserts that each succeeded.
async fn expect_all_ok<T>(calls: Vec<tokio::task::JoinHandle<Result<T>>>) {
    for (i, call) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = call.expect("the call's task does not panic") {
            panic!("call #{i} failed: {e:?}");
        }
    }
}

/// A token client of `server` with [`fast_options`].
fn token_client(server: &MockServer) -> PveClient {
    PveClient::with_options(&token_config(&server.url), fast_options()).unwrap()
}

/// A server that answers every request with `answer`, and a token client of it.
async fn token_client_of(answer: Canned) -> (MockServer, PveClient) {
    let server = MockServer::start(move |_| answer.clone()).await;
    let client = token_client(&server);
    (server, client)
}

/// A server that refuses every request with `status` and the error in the `reason` phrase only
/// (as PVE < 8.3 does), and a token client of it.
async fn token_client_refused(status: u16, reason: &str) -> (MockServer, PveClient) {
    token_client_of(Canned::raw(status, reason, r#"{"data":null}"#)).await
}

/// A password client of `server` that finds its ticket old on every request, so renews it first.
fn renewing_client(server: &MockServer) -> PveClient {
    let options = ClientOptions {
        ticket_renew_after: Duration::ZERO,
        ..fast_options()
    };
    PveClient::with_options(&password_config(&server.url), options).unwrap()
}

fn ticket_for(n: usize) -> String {
    format!("PVE:omni@pve:6500000{n}::c2lnbmF0dXJl+/={n}")
}

fn csrf_for(n: usize) -> String {
    format!("6500000{n}:Y3NyZnRva2Vu{n}")
}

/// A ticket-auth server: logins hand out ticket N (counting from 1); a request is accepted if it
/// carries a ticket that is still valid (`valid_from` and above) and, except for GET, the
/// matching CSRF token.
struct TicketServer {
    logins: AtomicUsize,
    valid_from: AtomicUsize,
}

impl TicketServer {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            logins: AtomicUsize::new(0),
            valid_from: AtomicUsize::new(1),
        })
    }

    fn handle(&self, r: &Recorded) -> Canned {
        if r.path == "/access/ticket" {
            let p = r.params();
            let current = self.logins.load(Ordering::SeqCst);
            let ok = p.get("username").map(String::as_str) == Some("omni@pve")
                && (p.get("password").map(String::as_str) == Some(PASSWORD)
                    || (current >= self.valid_from.load(Ordering::SeqCst)
                        && p.get("password") == Some(&ticket_for(current))));
            if !ok || r.header("CSRFPreventionToken").is_some() || r.header("Cookie").is_some() {
                return Canned::raw(401, "authentication failure", r#"{"data":null}"#);
            }
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            return Canned::data(json!({
                "username": "omni@pve",
                "ticket": ticket_for(n),
                "CSRFPreventionToken": csrf_for(n),
                "cap": {"vms": {"VM.Audit": 1}}
            }));
        }
        let Some(cookie) = r.header("Cookie") else {
            return Canned::raw(401, "No ticket", "");
        };
        let n = (1..=self.logins.load(Ordering::SeqCst)).find(|n| {
            let enc: String = percent_encoding::utf8_percent_encode(
                &ticket_for(*n),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string();
            cookie == format!("PVEAuthCookie={enc}")
        });
        let Some(n) = n.filter(|n| *n >= self.valid_from.load(Ordering::SeqCst)) else {
            return Canned::raw(401, "permission denied - invalid PVE ticket", "");
        };
        if r.method != "GET" && r.header("CSRFPreventionToken") != Some(csrf_for(n).as_str()) {
            return Canned::raw(401, "Permission denied - invalid csrf token", "");
        }
        Canned::data(json!({"version": "8.4.1", "release": "8.4", "repoid": "0123456789abcdef"}))
    }
}

async fn ticket_server() -> (Arc<TicketServer>, MockServer) {
    let state = TicketServer::new();
    let s = state.clone();
    let server = MockServer::start(move |r| s.handle(r)).await;
    (state, server)
}

#[tokio::test]
async fn token_auth_sends_the_pveapitoken_header_and_no_csrf_or_cookie() {
    let server = MockServer::start(|_| Canned::data(json!(null))).await;
    let client = token_client(&server);
    client.execute(&get("/version")).await.unwrap();
    client
        .execute(&post("/nodes/pve/qemu", Params::new()))
        .await
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(
            r.header("Authorization"),
            Some(format!("PVEAPIToken=omni@pve!omni-provider={TOKEN_SECRET}").as_str())
        );
        assert_eq!(r.header("CSRFPreventionToken"), None);
        assert_eq!(r.header("Cookie"), None);
    }
    assert_eq!(client.login_count(), 0);
}

#[tokio::test]
async fn ticket_auth_sends_the_cookie_always_and_csrf_only_on_writes() {
    let (_state, server) = ticket_server().await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    client.execute(&get("/version")).await.unwrap();
    client
        .execute(&post("/nodes/pve/qemu", Params::new()))
        .await
        .unwrap();
    client
        .execute(&ApiRequest::new(Method::Put, "/x", &[], Params::new()))
        .await
        .unwrap();
    client
        .execute(&ApiRequest::new(Method::Delete, "/x", &[], Params::new()))
        .await
        .unwrap();
    let reqs = server.requests();
    let methods: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "GET", "POST", "PUT", "DELETE"]);
    let login = &reqs[0];
    assert_eq!(login.path, "/access/ticket");
    assert_eq!(
        login.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        login.params().get("username").map(String::as_str),
        Some("omni@pve")
    );
    assert_eq!(reqs[1].header("CSRFPreventionToken"), None);
    for r in &reqs[2..] {
        assert_eq!(
            r.header("CSRFPreventionToken"),
            Some(csrf_for(1).as_str()),
            "{}",
            r.method
        );
        assert!(r.header("Cookie").is_some());
    }
    assert_eq!(client.login_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_a_single_login() {
    let (state, server) = ticket_server().await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    let calls = spawn_versions(&client, 24);
    expect_all_ok(calls).await;
    assert_eq!(state.logins.load(Ordering::SeqCst), 1);
    assert_eq!(server.count("POST", "/access/ticket"), 1);
    assert_eq!(server.count("GET", "/version"), 24);
}

#[tokio::test]
async fn an_expired_ticket_causes_one_transparent_relogin_for_reads_and_writes() {
    let (state, server) = ticket_server().await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    client.execute(&get("/version")).await.unwrap();
    // The server now refuses ticket 1 (as after the 2 h lifetime).
    state.valid_from.store(2, Ordering::SeqCst);
    client
        .execute(&post("/nodes/pve/qemu/100/status/start", Params::new()))
        .await
        .unwrap();
    assert_eq!(state.logins.load(Ordering::SeqCst), 2);
    // The write was sent twice: refused with 401 (not executed), then accepted.
    assert_eq!(server.count("POST", "/nodes/pve/qemu/100/status/start"), 2);
    state.valid_from.store(3, Ordering::SeqCst);
    client.execute(&get("/version")).await.unwrap();
    assert_eq!(state.logins.load(Ordering::SeqCst), 3);
    // The re-login used the password, not the refused ticket.
    let last_login = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/access/ticket")
        .unwrap();
    assert_eq!(
        last_login.params().get("password").map(String::as_str),
        Some(PASSWORD)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_401s_trigger_a_single_relogin() {
    let state = TicketServer::new();
    let (gate, mut arrivals) = testing::Gate::new();
    let s = state.clone();
    let server = MockServer::start_gated(move |r| s.handle(r), gate.clone()).await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    // Login and one request with ticket 1.
    gate.release.add_permits(2);
    client.execute(&get("/version")).await.unwrap();
    for _ in 0..2 {
        arrivals.recv().await.unwrap();
    }
    state.valid_from.store(2, Ordering::SeqCst);
    let calls = spawn_versions(&client, 16);
    // Hold all 16 until they are in flight, then let their 401s land at once.
    for _ in 0..16 {
        arrivals.recv().await.unwrap();
    }
    gate.release.add_permits(1000);
    expect_all_ok(calls).await;
    assert_eq!(state.logins.load(Ordering::SeqCst), 2);
    assert_eq!(server.count("POST", "/access/ticket"), 2);
}

#[tokio::test]
async fn the_ticket_is_renewed_by_posting_it_as_the_password() {
    let (state, server) = ticket_server().await;
    let client = renewing_client(&server);
    client.execute(&get("/version")).await.unwrap();
    client.execute(&get("/version")).await.unwrap();
    assert_eq!(state.logins.load(Ordering::SeqCst), 2);
    let logins: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/access/ticket")
        .collect();
    assert_eq!(logins[0].params()["password"], PASSWORD);
    assert_eq!(logins[1].params()["password"], ticket_for(1));
    assert_eq!(logins[1].params()["username"], "omni@pve");
}

#[tokio::test]
async fn a_refused_renewal_falls_back_to_the_password() {
    let (state, server) = ticket_server().await;
    let client = renewing_client(&server);
    client.execute(&get("/version")).await.unwrap();
    state.valid_from.store(2, Ordering::SeqCst);
    client.execute(&get("/version")).await.unwrap();
    let passwords: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/access/ticket")
        .map(|r| r.params()["password"].clone())
        .collect();
    assert_eq!(
        passwords,
        [PASSWORD.to_owned(), ticket_for(1), PASSWORD.to_owned()]
    );
    assert_eq!(state.logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_transient_renewal_failure_keeps_the_ticket_and_pauses_renewal() {
    let state = TicketServer::new();
    let fail_renewals = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, f) = (state.clone(), fail_renewals.clone());
    let server = MockServer::start(move |r| {
        if r.path == "/access/ticket" && f.load(Ordering::SeqCst) {
            return Canned::raw(596, "Connection timed out", "");
        }
        s.handle(r)
    })
    .await;
    let client = renewing_client(&server);
    client.execute(&get("/version")).await.unwrap();
    fail_renewals.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        client.execute(&get("/version")).await.unwrap();
    }
    // One failed renewal attempt, then the still valid ticket is used without new attempts.
    assert_eq!(server.count("POST", "/access/ticket"), 2);
    assert_eq!(server.count("GET", "/version"), 6);
}

#[tokio::test]
async fn a_refused_password_is_unauthorized_and_not_retried_in_a_loop() {
    let server = MockServer::start(|r| {
        if r.path == "/access/ticket" {
            Canned::raw(
                401,
                "authentication failure",
                r#"{"data":null,"message":"authentication failure\n"}"#,
            )
        } else {
            Canned::data(json!(null))
        }
    })
    .await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    match client.execute(&get("/version")).await {
        Err(PveError::Unauthorized { reason }) => assert_eq!(reason, "authentication failure"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count("POST", "/access/ticket"), 1);
    assert_eq!(server.count("GET", "/version"), 0);
}

#[tokio::test]
async fn tfa_required_is_reported_as_unauthorized() {
    let server = MockServer::start(|_| {
        Canned::data(json!({"username":"omni@pve","ticket":"PVE:!tfa!x","CSRFPreventionToken":"c","NeedTFA":1}))
    })
    .await;
    let client = PveClient::with_options(&password_config(&server.url), fast_options()).unwrap();
    match client.execute(&get("/version")).await {
        Err(PveError::Unauthorized { reason }) => {
            assert!(reason.contains("second factor"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

fn flaky(
    status: u16,
    reason: &'static str,
    failures: usize,
) -> impl Fn(&Recorded) -> Canned + Send + Sync {
    let seen = AtomicUsize::new(0);
    move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) < failures {
            Canned::raw(status, reason, r#"{"data":null}"#)
        } else {
            Canned::data(json!("ok"))
        }
    }
}

#[tokio::test]
async fn sequential_requests_reuse_one_pooled_connection() {
    let server = MockServer::start(|_| Canned::data(json!(null))).await;
    let client = token_client(&server);
    for _ in 0..10 {
        client.execute(&get("/version")).await.unwrap();
        client
            .clone()
            .execute(&post("/nodes/pve/qemu", Params::new()))
            .await
            .unwrap();
    }
    assert_eq!(server.requests().len(), 20);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn reads_are_retried_on_transient_errors() {
    let server = MockServer::start(flaky(596, "Connection timed out", 2)).await;
    let client = token_client(&server);
    let resp = client.execute(&get("/cluster/resources")).await.unwrap();
    assert_eq!(resp.data, json!("ok"));
    assert_eq!(server.count("GET", "/cluster/resources"), 3);
}

#[tokio::test]
async fn reads_give_up_after_max_attempts() {
    let server = MockServer::start(flaky(503, "Service Unavailable", 100)).await;
    let client = token_client(&server);
    let e = client.execute(&get("/version")).await.unwrap_err();
    assert!(matches!(e, PveError::Server { status: 503, .. }), "{e:?}");
    assert_eq!(server.count("GET", "/version"), 3);
}

#[tokio::test]
async fn writes_are_never_retried() {
    for method in [Method::Post, Method::Put, Method::Delete] {
        let server = MockServer::start(flaky(
            500,
            "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
            1,
        ))
        .await;
        let client = token_client(&server);
        let e = client
            .execute(&ApiRequest::new(
                method,
                "/nodes/pve/qemu",
                &[],
                Params::new(),
            ))
            .await
            .unwrap_err();
        assert!(matches!(e, PveError::LockTimeout { .. }), "{e:?}");
        assert!(e.is_retryable(), "the caller may decide to retry");
        assert_eq!(server.requests().len(), 1, "{method}");
    }
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let (server, client) =
        token_client_refused(403, "Permission check failed (/vms/100, VM.Audit)").await;
    let e = client
        .execute(&get("/nodes/pve/qemu/100/config"))
        .await
        .unwrap_err();
    match e {
        PveError::PermissionDenied {
            path, privileges, ..
        } => {
            assert_eq!(path.as_deref(), Some("/vms/100"));
            assert_eq!(privileges, ["VM.Audit"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn pve_8_0_reason_phrase_errors_reach_the_caller() {
    let (_server, client) = token_client_refused(
        500,
        "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout",
    )
    .await;
    match client
        .execute(&post("/nodes/pve/qemu/203/config", Params::new()))
        .await
    {
        Err(PveError::LockTimeout { message }) => {
            assert_eq!(
                message,
                "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pve_8_4_json_message_errors_reach_the_caller() {
    let (_server, client) = token_client_of(Canned::raw(400, "Parameter verification failed.", r#"{"data":null,"errors":{"vmid":"value must have a minimum value of 100"},"message":"Parameter verification failed.\n"}"#)).await;
    match client.execute(&get("/cluster/nextid")).await {
        Err(PveError::InvalidParameters { errors, message }) => {
            assert_eq!(message, "Parameter verification failed.");
            assert_eq!(errors["vmid"], "value must have a minimum value of 100");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn parameters_are_form_encoded_in_the_body_for_writes_and_in_the_query_for_reads() {
    let server = MockServer::start(|_| Canned::data(json!(null))).await;
    let client = token_client(&server);
    let mut p = Params::new();
    p.bool("purge", true)
        .bool("destroy-unreferenced-disks", false)
        .str("name", "a b");
    client
        .execute(&ApiRequest::new(
            Method::Delete,
            "/nodes/pve/qemu/100",
            &[],
            p.clone(),
        ))
        .await
        .unwrap();
    client
        .execute(&post("/nodes/pve/qemu", p.clone()))
        .await
        .unwrap();
    let reqs = server.requests();
    assert_eq!(
        reqs[0].query,
        "purge=1&destroy-unreferenced-disks=0&name=a+b"
    );
    assert_eq!(reqs[0].body, "");
    assert_eq!(reqs[0].header("Content-Length"), None, "no body on DELETE");
    assert_eq!(reqs[1].query, "");
    assert_eq!(
        reqs[1].body,
        "purge=1&destroy-unreferenced-disks=0&name=a+b"
    );
    assert_eq!(
        reqs[1].header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        reqs[1].header("Transfer-Encoding").is_none(),
        "PVE refuses chunked bodies"
    );
}

#[tokio::test]
async fn a_non_json_success_body_is_a_decode_error_with_an_excerpt() {
    let server = MockServer::start(|_| Canned::raw(200, "OK", "<html>proxy login</html>")).await;
    let client = token_client(&server);
    match client.execute(&get("/version")).await {
        Err(PveError::Decode {
            context, excerpt, ..
        }) => {
            assert_eq!(context, "GET /version");
            assert!(excerpt.contains("proxy login"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = PveClient::with_options(
        &token_config(&format!("http://127.0.0.1:{port}/api2/json")),
        fast_options(),
    )
    .unwrap();
    let e = client.execute(&get("/version")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e:?}");
    assert!(e.is_retryable());
    assert!(!e.to_string().contains(TOKEN_SECRET));
}

#[tokio::test]
async fn a_silent_server_gives_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept connections and never answer.
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let options = ClientOptions {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let client =
        PveClient::with_options(&token_config(&format!("http://127.0.0.1:{port}")), options)
            .unwrap();
    let e = client.execute(&get("/version")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    hold.abort();
}

#[tokio::test]
async fn at_most_max_concurrent_requests_are_in_flight() {
    let (gate, mut arrivals) = testing::Gate::new();
    let server = MockServer::start_gated(|_| Canned::data(json!(1)), gate.clone()).await;
    let options = ClientOptions {
        max_concurrent_requests: 2,
        ..fast_options()
    };
    let client = PveClient::with_options(&token_config(&server.url), options).unwrap();
    let calls = spawn_versions(&client, 8);
    // Answer one request per arrival: without the bound all 8 would arrive before any answer.
    for _ in 0..8 {
        arrivals.recv().await.unwrap();
        gate.release.add_permits(1);
    }
    expect_all_ok(calls).await;
    assert_eq!(server.requests().len(), 8);
    assert!(
        gate.max_in_flight.load(Ordering::SeqCst) <= 2,
        "{}",
        gate.max_in_flight.load(Ordering::SeqCst)
    );
}

/// The controller spawns client calls on tokio: the client, its futures and its error must be
/// `Send + Sync + 'static`.
#[test]
fn client_futures_and_errors_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<PveClient>();
    send_sync_static::<PveError>();
    let client = PveClient::new(&token_config("https://localhost:8006/api2/json")).unwrap();
    let cfg = crate::api::vmconfig::VmConfig::default();
    let upid: crate::task::Upid = "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:"
        .parse()
        .unwrap();
    send(&client.qemu_create("pve", 100, &cfg, false));
    send(&client.wait_task(&upid, &crate::api::tasks::WaitOptions::default()));
    send(&client.cluster_resources(None));
    send(&client.qemu_config("pve", 100));
    send(&client.permissions(None, None));
}

#[test]
fn backoff_grows_is_jittered_and_capped() {
    let p = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1000),
    };
    for attempt in 0..10 {
        let d = p.backoff(attempt);
        let cap = (100u64 << attempt).min(1000);
        assert!(
            d.as_millis() as u64 >= cap / 2 && d.as_millis() as u64 <= cap,
            "{attempt}: {d:?}"
        );
    }
}

/// A `MakeWriter` collecting everything logged.
#[derive(Clone, Default)]
pub(super) struct Capture(pub(super) Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keeps a [`Capture`] subscriber installed on this thread while it lives.
pub(super) struct Logging {
    _guard: tracing::dispatcher::DefaultGuard,
    _anchor: tracing::Dispatch,
}

impl Capture {
    /// Installs a subscriber on this thread that writes every event at TRACE and up, and the
    /// span `events`, without colours, to the returned capture.
    pub(super) fn install(events: tracing_subscriber::fmt::format::FmtSpan) -> (Self, Logging) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(events)
            .finish();
        // tracing caches each callsite's interest for the whole process. While at most one
        // dispatcher is registered, a callsite first hit by another test's thread (which has no
        // subscriber) is cached as "never", and this thread-local subscriber would see nothing.
        // A second registered dispatcher makes tracing ask all of them, this one included; the
        // rebuild corrects callsites cached before it.
        let dispatch = tracing::Dispatch::new(subscriber);
        let anchor = tracing::Dispatch::new(tracing_subscriber::registry());
        let guard = tracing::dispatcher::set_default(&dispatch);
        tracing::callsite::rebuild_interest_cache();
        let logging = Logging {
            _guard: guard,
            _anchor: anchor,
        };
        (capture, logging)
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn request_spans_record_method_path_status_and_never_a_secret() {
    let (capture, _logging) = Capture::install(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    let (_state, ticket_srv) = ticket_server().await;
    let token_srv =
        MockServer::start(|_| Canned::raw(403, "Permission check failed (/vms/100, VM.Audit)", ""))
            .await;
    let c1 = PveClient::with_options(&password_config(&ticket_srv.url), fast_options()).unwrap();
    c1.execute(&post("/nodes/pve/qemu", Params::new()))
        .await
        .unwrap();
    let c2 = PveClient::with_options(&token_config(&token_srv.url), fast_options()).unwrap();
    let _ = c2.execute(&get("/nodes/pve/qemu/100/config")).await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("pve_request"), "{logs}");
    assert!(
        logs.contains("method=\"POST\"") || logs.contains("method=POST"),
        "{logs}"
    );
    assert!(logs.contains("/nodes/pve/qemu/100/config"), "{logs}");
    assert!(logs.contains("status=403"), "{logs}");
    assert!(logs.contains("duration_ms"), "{logs}");
    for secret in [
        TOKEN_SECRET,
        PASSWORD,
        &ticket_for(1),
        &csrf_for(1),
        "c2lnbmF0dXJl",
    ] {
        assert!(!logs.contains(secret), "secret {secret:?} leaked into logs");
    }
    assert!(!format!("{c1:?}{c2:?}").contains(TOKEN_SECRET));
}

// ---- TLS trust modes ----

pub(super) struct TlsFixture {
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
    leaf_der: Vec<u8>,
}

pub(super) fn tls_fixture() -> TlsFixture {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    TlsFixture {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca_cert.pem(),
        leaf_der: leaf.der().to_vec(),
    }
}

async fn tls_call(trust: TlsTrust) -> (Result<ApiResponse>, usize) {
    let fx = tls_fixture();
    let trust = match trust {
        TlsTrust::CaBundle(_) => TlsTrust::CaBundle(fx.ca_pem.clone()),
        TlsTrust::Fingerprint(fp) if fp.0 == [0; 32] => {
            TlsTrust::Fingerprint(crate::tls::fingerprint_of(&fx.leaf_der))
        }
        other => other,
    };
    let server = MockServer::start_tls(|_| Canned::data(json!("hello")), fx.acceptor.clone()).await;
    let mut cfg = token_config(&server.url);
    cfg.tls = trust;
    let client = PveClient::with_options(&cfg, fast_options()).unwrap();
    let r = client.execute(&get("/version")).await;
    (r, server.requests().len())
}

#[tokio::test]
async fn tls_is_verified_by_default_and_refuses_an_unknown_ca() {
    let (r, seen) = tls_call(TlsTrust::PublicRoots).await;
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("not signed by a trusted CA"), "{e}");
    assert_eq!(seen, 0, "no request may reach an unverified server");
}

#[tokio::test]
async fn a_ca_bundle_trusts_the_node_certificate() {
    let (r, _) = tls_call(TlsTrust::CaBundle(String::new())).await;
    assert_eq!(r.unwrap().data, json!("hello"));
}

#[tokio::test]
async fn a_pinned_fingerprint_trusts_exactly_that_certificate() {
    let (r, _) = tls_call(TlsTrust::Fingerprint(Fingerprint([0; 32]))).await;
    assert_eq!(r.unwrap().data, json!("hello"));
    let (r, seen) = tls_call(TlsTrust::Fingerprint(Fingerprint([0xAB; 32]))).await;
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Certificate);
    assert!(e.to_string().contains("fingerprint"), "{e}");
    assert_eq!(seen, 0);
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_certificate() {
    let (r, _) = tls_call(TlsTrust::InsecureSkipVerify).await;
    assert_eq!(r.unwrap().data, json!("hello"));
}

#[test]
fn a_bad_ca_bundle_is_a_config_error() {
    let mut cfg = token_config("https://localhost:8006/api2/json");
    cfg.tls = TlsTrust::CaBundle(
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into(),
    );
    match PveClient::new(&cfg) {
        Err(PveError::Config { key, .. }) => assert_eq!(key, "caBundle"),
        other => panic!("{other:?}"),
    }
}
