//! A token secret and a password with unique canary values, driven through every error path the
//! client has: neither canary (nor URL userinfo) may appear in any error's `Display` or `Debug`,
//! nor in anything logged, even when the server quotes back what it received.

use serde_json::json;

use super::tests::{Capture, tls_fixture};
use super::*;
use crate::api::tasks::WaitOptions;
use crate::request::Params;
use crate::task::Upid;
use crate::testing::{self, Canned, MockServer, Recorded};

const TOKEN_CANARY: &str = "c4n4ry70-0000-4000-8000-70ken5ecre71";
const PASSWORD_CANARY: &str = "CANARY-passw0rd-7f3a9e";
const PARAM_CANARY: &str = "CANARY-cipassword-91b2";

/// Every canary, and the userinfo forms they take in URLs.
fn canaries() -> Vec<String> {
    vec![
        TOKEN_CANARY.to_owned(),
        PASSWORD_CANARY.to_owned(),
        PARAM_CANARY.to_owned(),
        // The fragments of userinfo passwords that a URL parser would split elsewhere.
        "CAN/ARY".to_owned(),
        "CAN?ARY".to_owned(),
        "CAN#ARY".to_owned(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for c in canaries() {
        let leaking: Vec<&str> = text
            .lines()
            .filter(|l| l.to_lowercase().contains(&c.to_lowercase()))
            .collect();
        assert!(leaking.is_empty(), "{what} leaks {c:?}: {leaking:#?}");
    }
}

fn assert_error_clean(what: &str, e: &PveError) {
    assert_clean(what, &e.to_string());
    assert_clean(what, &format!("{e:?}"));
    assert_clean(what, &format!("{e:#?}"));
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: testing::quick_retries(2, 2),
        ..ClientOptions::default()
    }
}

/// Everything a request carried (headers and body), as a hostile server would quote it back.
fn echo(r: &Recorded) -> String {
    let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{} {} {} {}", r.path, r.query, headers.join(" "), r.body)
}

/// A request with a secret parameter (like `cipassword`).
fn write_with_secret() -> ApiRequest {
    let mut p = Params::new();
    p.set("cipassword", ParamValue::Secret(Secret::new(PARAM_CANARY)))
        .str("ciuser", "debian");
    ApiRequest::new(
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/config",
        &[("node", "pve"), ("vmid", "100")],
        p,
    )
}

fn get(path: &'static str) -> ApiRequest {
    ApiRequest::new(Method::Get, path, &[], Params::new())
}

/// Answers logins with a ticket, everything else with what `then` makes of the request.
fn with_login(
    then: impl Fn(&Recorded) -> Canned + Send + Sync + 'static,
) -> impl Fn(&Recorded) -> Canned + Send + Sync + 'static {
    move |r| {
        if r.path == "/access/ticket" {
            Canned::data(json!({
                "ticket": "PVE:omni@pve:65000001::c2ln",
                "CSRFPreventionToken": "65000001:Y3NyZg",
                "username": "omni@pve",
            }))
        } else {
            then(r)
        }
    }
}

/// Every error the client can meet at runtime, with both credential kinds.
async fn runtime_errors() -> Vec<(String, PveError)> {
    let mut out = Vec::new();
    let record = |out: &mut Vec<(String, PveError)>, what: &str, r: Result<ApiResponse>| match r {
        Err(e) => out.push((what.to_owned(), e)),
        Ok(resp) => panic!("{what} succeeded: {resp:?}"),
    };
    type Make = fn(&str) -> PveConfig;
    for (kind, make) in [
        (
            "token",
            (|url| testing::token_config(url, "omni@pve!omni", TOKEN_CANARY)) as Make,
        ),
        ("password", |url| {
            testing::password_config(url, "omni@pve", PASSWORD_CANARY)
        }),
    ] {
        // Unreachable host: a port nobody listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = PveClient::with_options(
            &make(&format!("http://127.0.0.1:{closed}/api2/json")),
            options(),
        )
        .unwrap();
        record(
            &mut out,
            &format!("{kind}: unreachable"),
            c.execute(&get("/version")).await,
        );

        // A certificate no CA vouches for.
        let fx = tls_fixture();
        let srv = MockServer::start_tls(|_| Canned::data(json!({})), fx.acceptor.clone()).await;
        let c = PveClient::with_options(&make(&srv.url), options()).unwrap();
        record(
            &mut out,
            &format!("{kind}: certificate"),
            c.execute(&get("/version")).await,
        );

        // 401, 403, 500, 400 and a non-JSON 200, each quoting back the whole request (the
        // Authorization header or the ticket cookie, the CSRF token, the form body).
        for status in [401u16, 403, 500, 400] {
            let handler = move |r: &Recorded| {
                let quoted = echo(r);
                let body = json!({
                    "data": null,
                    "message": match status {
                        403 => format!("Permission check failed ({quoted})"),
                        _ => format!("unexpected error: {quoted}"),
                    },
                    "errors": { "cipassword": format!("value '{quoted}' is invalid") },
                });
                Canned::raw(
                    status,
                    &format!("refused {}", quoted.len()),
                    &body.to_string(),
                )
            };
            let srv = match kind {
                "token" => MockServer::start(handler).await,
                _ => MockServer::start(with_login(handler)).await,
            };
            let c = PveClient::with_options(&make(&srv.url), options()).unwrap();
            record(
                &mut out,
                &format!("{kind}: HTTP {status} echo"),
                c.execute(&write_with_secret()).await,
            );
        }
        let srv = MockServer::start(with_login(|r| Canned::raw(200, "OK", &echo(r)))).await;
        let c = PveClient::with_options(&make(&srv.url), options()).unwrap();
        record(
            &mut out,
            &format!("{kind}: undecodable 200 echo"),
            c.execute(&write_with_secret()).await,
        );

        // A login refused with the password quoted back (ticket auth only sends it there).
        let srv = MockServer::start(|r| {
            Canned::raw(
                401,
                "authentication failure",
                &json!({"message": echo(r)}).to_string(),
            )
        })
        .await;
        let c = PveClient::with_options(&make(&srv.url), options()).unwrap();
        record(
            &mut out,
            &format!("{kind}: login echo"),
            c.execute(&get("/version")).await,
        );

        // A body past the limit.
        let srv =
            MockServer::start(with_login(|r| Canned::raw(500, "X", &echo(r).repeat(5000)))).await;
        let mut opts = options();
        opts.max_error_body_bytes = 1024;
        let c = PveClient::with_options(&make(&srv.url), opts).unwrap();
        record(
            &mut out,
            &format!("{kind}: too large"),
            c.execute(&write_with_secret()).await,
        );

        // A failed task whose exit status and log quote the credentials.
        let srv = MockServer::start(with_login(|r| {
            let quoted = echo(r);
            if r.path.ends_with("/status") {
                Canned::data(json!({
                    "upid": "UPID:pve:00000001:00000001:65000000:qmstart:100:omni@pve:",
                    "node": "pve", "status": "stopped", "type": "qmstart", "id": "100",
                    "user": "omni@pve", "pid": 1, "pstart": 1, "starttime": 1,
                    "exitstatus": format!("start failed: {quoted}"),
                }))
            } else {
                let body = json!({ "data": [{ "n": 1, "t": quoted }], "total": 1 });
                Canned::raw(200, "OK", &body.to_string())
            }
        }))
        .await;
        let c = PveClient::with_options(&make(&srv.url), options()).unwrap();
        let upid: Upid = "UPID:pve:00000001:00000001:65000000:qmstart:100:omni@pve:"
            .parse()
            .unwrap();
        let waited = c
            .wait_task(
                &upid,
                &WaitOptions {
                    initial_interval: Duration::from_millis(1),
                    max_interval: Duration::from_millis(2),
                    timeout: Some(Duration::from_secs(5)),
                    log_tail_lines: 5,
                },
            )
            .await;
        match waited {
            Err(e @ PveError::TaskFailed { .. }) => {
                // The token is quoted back in its header (a password is only ever sent to the
                // login, so the ticket cookie is what the server quotes then).
                assert!(
                    kind != "token" || e.to_string().contains("***"),
                    "the quoted credential is replaced: {e}"
                );
                out.push((format!("{kind}: task failure"), e));
            }
            other => panic!("{kind}: task failure expected, got {other:?}"),
        }
        let tail = c.task_log_tail(&upid, 5).await.unwrap();
        assert_clean(&format!("{kind}: task log tail"), &tail.join("\n"));
    }
    out
}

/// Config documents with userinfo in malformed URLs and credentials in the wrong shape or key.
fn config_errors() -> Vec<(String, PveError)> {
    let urls = [
        format!("https://omni:{PASSWORD_CANARY}@pve:8006/api2/json"),
        format!("https://omni:{PASSWORD_CANARY}@"),
        format!("https://omni:{PASSWORD_CANARY}@pve:99999"),
        format!("https://omni:CAN/ARY{PASSWORD_CANARY}@pve:8006"),
        format!("https://omni:CAN?ARY{PASSWORD_CANARY}@pve:8006"),
        format!("https://omni:CAN#ARY{PASSWORD_CANARY}@pve:8006"),
        format!("https://om ni:{PASSWORD_CANARY}@pve"),
        format!("ftp://omni:{PASSWORD_CANARY}@pve"),
        format!("omni:{PASSWORD_CANARY}@pve:8006"),
        format!("https://{TOKEN_CANARY}@pve:8006"),
        format!("https://pve:8006/api2/json?token={TOKEN_CANARY}"),
        format!("https://pve:8006/api2/json#{TOKEN_CANARY}"),
        format!("https://pve:8006/x?token={TOKEN_CANARY}"),
        format!("not a url ?{TOKEN_CANARY}"),
    ];
    let mut out = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let doc = format!(
            "proxmox:\n  url: {url:?}\n  tokenID: omni@pve!omni\n  tokenSecret: {TOKEN_CANARY}\n"
        );
        let e = PveConfig::from_yaml_str(&doc).expect_err(url);
        assert!(
            matches!(&e, PveError::Config { key, .. } if key == "url"),
            "{url}: {e}"
        );
        out.push((format!("url #{i}"), e));
        let e = PveConfig::load_with_env(None, |k| match k {
            "PVE_URL" => Some(url.clone()),
            "PVE_TOKEN_ID" => Some("omni@pve!omni".into()),
            "PVE_TOKEN_SECRET" => Some(TOKEN_CANARY.into()),
            _ => None,
        })
        .expect_err(url);
        out.push((format!("PVE_URL #{i}"), e));
    }
    let base = "proxmox:\n  url: https://pve:8006\n";
    let docs = [
        format!("{base}  tokenID: omni@pve!omni\n  tokenSecret: [{TOKEN_CANARY}]\n"),
        format!("{base}  tokenID: omni@pve!omni\n  tokenSecret: {{{TOKEN_CANARY}: 1}}\n"),
        format!("{base}  tokenID: omni@pve!omni\n  tokenSecret: \"{TOKEN_CANARY} x\"\n"),
        format!("{base}  tokenID: {TOKEN_CANARY}\n  tokenSecret: omni@pve!omni\n"),
        format!("{base}  username: omni@pve\n  password: [{PASSWORD_CANARY}]\n"),
        format!("{base}  username: omni@pve\n  passwrd: {PASSWORD_CANARY}\n"),
        format!(
            "proxmox: {{url: https://pve:8006, username: omni@pve, password:{PASSWORD_CANARY}}}\n"
        ),
        format!(
            "proxmox:\n  url: https://pve:8006\n  username: omni@pve\n  password:{PASSWORD_CANARY}\n"
        ),
        format!(
            "proxmox:\n  url: https://pve:8006\n  username: omni@pve\n   password: {PASSWORD_CANARY}\n"
        ),
        format!("{base}  username: omni@pve\n  password: \"{PASSWORD_CANARY}\n"),
        format!(
            "{base}  username: omni@pve\n  password: {PASSWORD_CANARY}\n  tokenID: omni@pve!omni\n  tokenSecret: {TOKEN_CANARY}\n"
        ),
        format!("{base}  username: omni\n  password: {PASSWORD_CANARY}\n"),
    ];
    for (i, doc) in docs.iter().enumerate() {
        match PveConfig::from_yaml_str(doc) {
            Err(e) => out.push((format!("config #{i}"), e)),
            Ok(c) => panic!("{doc:?} was accepted: {c:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn no_error_and_no_log_line_carries_a_credential_or_url_userinfo() {
    let (capture, _logging) = Capture::install(tracing_subscriber::fmt::format::FmtSpan::FULL);

    let mut errors = config_errors();
    errors.extend(runtime_errors().await);
    assert!(errors.len() >= 60, "{} error paths", errors.len());
    for (what, e) in &errors {
        tracing::error!(error = %e, debug = ?e, "{what}");
        assert_error_clean(what, e);
    }
    let kinds: std::collections::BTreeSet<String> =
        errors.iter().map(|(_, e)| e.kind().to_string()).collect();
    for kind in [
        "Config",
        "Transport",
        "Certificate",
        "Unauthorized",
        "PermissionDenied",
        "Server",
        "InvalidParameters",
        "Decode",
        "ResponseTooLarge",
        "TaskFailed",
    ] {
        assert!(kinds.contains(kind), "no {kind} error among {kinds:?}");
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("pve_request"),
        "the capture works: {logs:.500}"
    );
    assert!(logs.contains("HTTP 403 echo"), "errors were logged too");
    assert_clean("the logs", &logs);
}
