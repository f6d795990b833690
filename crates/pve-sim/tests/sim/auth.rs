//! Authentication: the exact 401 reasons (in both error styles) and their empty bodies, CSRF
//! tokens on writes with a ticket, ticket renewal and the two-hour expiry, API tokens (privilege
//! separation, the README's least-privilege setup) and disabled users.

use pve_sim::config::AuthErrorStyle;
use pve_sim::{SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, advance_clock, fast_config, get_request, raw, start, start_with};

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
    let ticket = api.ticket();
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
    let ticket = api.ticket();
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
    advance_clock(&sim, 7201).await;
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
