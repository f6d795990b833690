//! Authentication: API tokens (no CSRF, tasks owned by the token), tickets (one login for
//! concurrent requests, CSRF on writes, renewal by posting the ticket, one transparent re-login
//! after expiry, shared by concurrent requests), and refused credentials with their 401 reasons.

use std::time::Duration;

use pve_client::request::Method;
use pve_client::{ClientOptions, PveClient, PveError};
use pve_sim::config::AuthErrorStyle;
use serde_json::Value;

use crate::support::{
    Harness, ROOT_PW, Trust, create_and_wait, expect_err, fast_cluster, fast_options, small_vm,
};

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
    h.expect_requests("POST /access/ticket", 1, "one login")
        .await;

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

/// A simulator on which root has created the auditor `alice@pve` with `password`, and root's
/// client.
async fn start_with_alice(password: &str) -> (Harness, PveClient) {
    let h = Harness::start().await;
    let root = h.root();
    h.create_auditor(&root, "alice@pve", password, None).await;
    (h, root)
}

#[tokio::test]
async fn ticket_is_renewed_by_posting_the_ticket_once_the_renew_interval_passed() {
    let (h, root) = start_with_alice("first-password").await;
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
    h.advance_clock(3 * 3600).await;
    let vmid = root.next_vmid().await.expect("GET after expiry re-logs in");
    assert_eq!(root.login_count(), 2);
    h.advance_clock(3 * 3600).await;
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
async fn concurrent_requests_on_an_expired_ticket_share_one_relogin() {
    let (h, _root) = start_with_alice("alice-password").await;
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
    h.advance_clock(3 * 3600).await;
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

/// Root creates the token `ops@pve!ci`; a client presenting it with a made-up secret is
/// refused: its error.
async fn forged_token_error(h: &Harness) -> PveError {
    let root = h.root();
    h.create_auditor(&root, "ops@pve", "ops-password", Some("ci"))
        .await;
    let forged = h.token_client("ops@pve!ci", "00000000-0000-0000-0000-000000000000");
    expect_err(forged.version().await, "bad token secret")
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

    let e = forged_token_error(&h).await;
    assert!(
        matches!(&e, PveError::Unauthorized { reason } if reason == "Authentication failed!"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    h.expect_requests("GET /version", 1, "a 401 is not retried")
        .await;
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
    let e = forged_token_error(&h).await;
    assert!(
        matches!(&e, PveError::Unauthorized { reason } if reason == "invalid token value!"),
        "{e:?}"
    );
}
