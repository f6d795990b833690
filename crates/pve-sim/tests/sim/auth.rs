//! Authentication: the exact 401 reasons (in both error styles) and their empty bodies, CSRF
//! tokens on writes with a ticket, ticket renewal and the two-hour expiry, API tokens (privilege
//! separation, the README's least-privilege setup) and disabled users.

use pve_sim::config::AuthErrorStyle;
use pve_sim::{SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, FORGED_TICKET, advance_clock, assert_unified_auth_failures, fast_config, raw, raw_get,
    start_root, start_with, version_with_token,
};

#[tokio::test]
async fn auth_failures_are_401_with_exact_reasons_and_empty_bodies() {
    let sim = start_with(fast_config(), true).await;
    let (code, reason, head, body) = raw_get(&sim, "/version", "").await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "No ticket", "")
    );
    assert!(head.to_ascii_lowercase().contains("connection: close"));
    assert!(!head.to_ascii_lowercase().contains("content-type"));

    assert_unified_auth_failures(&sim, "root@pam!t:abc").await;

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
    let (_, reason, _, _) = raw_get(&sim, "/version", FORGED_TICKET).await;
    assert_eq!(reason, "permission denied - invalid PVE ticket");
    let (_, reason) = version_with_token(&sim, "root@pam!t:abc").await;
    assert_eq!(reason, "no tokenid specified");
    let (_, reason) = version_with_token(&sim, "carol@pve!nope=x").await;
    assert_eq!(reason, "no such token 'nope' for user 'carol@pve'");
    let now = sim.with_state(|s| pve_sim::clock::now_ms(s.clock_offset_ms) / 1000);
    let secret = sim
        .with_state(|s| {
            s.access
                .token_add("carol@pve", "ci", Some(false), Some(now + 100), None)
        })
        .expect("token");
    let token = format!("carol@pve!ci={secret}");
    let (code, _) = version_with_token(&sim, &token).await;
    assert_eq!(code, 200);
    let (_, reason) = version_with_token(&sim, "carol@pve!ci=wrong").await;
    assert_eq!(reason, "invalid token value!");
    sim.with_state(|s| s.clock_offset_ms += 200_000);
    let (_, reason) = version_with_token(&sim, &token).await;
    assert_eq!(
        reason, "token 'ci' access expired",
        "expiry follows the simulator clock"
    );
}

#[tokio::test]
async fn non_get_requests_with_a_ticket_need_the_csrf_token() {
    let sim = start_with(fast_config(), true).await;
    let api = Api::root(&sim).await;
    let ticket = api.ticket();
    let req = format!(
        "POST /api2/json/nodes/pve/qemu HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: PVEAuthCookie={ticket}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nvmid=4242"
    );
    let (code, reason, _, body) = raw(&sim, &req).await;
    assert_eq!(
        (code, reason.as_str(), body.as_str()),
        (401, "Permission denied - invalid csrf token", "")
    );
    // With the CSRF token the same call passes.
    api.expect(Method::POST, "/nodes/pve/qemu", &[("vmid", "4242")], 200)
        .await;
}

#[tokio::test]
async fn ticket_renews_with_the_ticket_as_password_and_expires_after_two_hours() {
    let (sim, api) = start_root().await;
    let ticket = api.ticket();
    assert!(ticket.starts_with("PVE:root@pam:"));
    assert!(ticket.contains("::"));
    let anon = Api::anonymous(&sim);
    let renewal = [("username", "root@pam"), ("password", &ticket)];
    anon.expect(Method::POST, "/access/ticket", &renewal, 200)
        .await;
    advance_clock(&sim, 7201).await;
    // A ticket older than 2 h is refused, and cannot be renewed.
    api.expect(Method::GET, "/version", &[], 401).await;
    anon.expect(Method::POST, "/access/ticket", &renewal, 401)
        .await;
}

#[tokio::test]
async fn api_tokens_authenticate_and_privsep_tokens_start_without_privileges() {
    let (sim, root) = start_root().await;
    let body = root
        .expect(Method::POST, "/access/users/carol@pve/token/ci", &[], 200)
        .await;
    assert_eq!(body["data"]["full-tokenid"], "carol@pve!ci");
    let secret = body["data"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = Api::with_token(&sim, &format!("carol@pve!ci={secret}"));
    let version = token.get("/version").await;
    assert_eq!(version["version"], "9.1.5");
    // A privsep token without ACLs.
    token
        .expect(Method::GET, "/nodes/pve/qemu/9000/config", &[], 403)
        .await;
    let wrong = Api::with_token(&sim, "carol@pve!ci=00000000-0000-0000-0000-000000000000");
    wrong.expect(Method::GET, "/version", &[], 401).await;
    // Tokens cannot use /access/ticket.
    let no_ticket = "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.\n)\n";
    let login = [("username", "carol@pve"), ("password", "x")];
    token
        .expect_message(Method::POST, "/access/ticket", &login, (403, no_ticket))
        .await;
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
    // Nothing beyond /vms.
    token
        .expect(Method::GET, "/nodes/pve/status", &[], 403)
        .await;
}

#[tokio::test]
async fn disabling_a_user_invalidates_their_ticket_and_tokens() {
    let (sim, root) = start_root().await;
    let carol = Api::login_with_new_password(&sim, "carol@pve", "carolpw").await;
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
    let disable = [("enable", "0")];
    root.expect(Method::PUT, "/access/users/carol@pve", &disable, 200)
        .await;
    assert_eq!(carol.call(Method::GET, "/version", &[]).await.0, 401);
    assert_eq!(token.call(Method::GET, "/version", &[]).await.0, 401);
    let login = [("username", "carol@pve"), ("password", "carolpw")];
    Api::anonymous(&sim)
        .expect(Method::POST, "/access/ticket", &login, 401)
        .await;
}
