//! The request pipeline and how errors are written: the order of the checks (401, then 501, 403,
//! 400), per-parameter errors, the message in the reason phrase only, the extjs format, gzip for
//! large answers, unknown nodes, and odd inputs that must get answers rather than crash the
//! server.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Api, Auth, ROOT_PW, create_vm_ok, fast_config, get_request, raw, start, start_root, start_with,
};

#[tokio::test]
async fn pipeline_answers_401_then_501_then_403_then_400() {
    let sim = start().await;
    // Authentication comes first.
    Api::anonymous(&sim)
        .expect(Method::GET, "/nodes/pve/nonsense", &[], 401)
        .await;
    let root = Api::root(&sim).await;
    let unknown = (501, "Method 'GET /nodes/pve/nonsense' not implemented\n");
    root.expect_message(Method::GET, "/nodes/pve/nonsense", &[], unknown)
        .await;
    let bob = Api::login_with_new_password(&sim, "bob@pve", "bobpw").await;
    // The permission check precedes parameter validation.
    let config = "/nodes/pve/qemu/100/config";
    let bogus = [("bogus", "1")];
    let denied = (403, "Permission check failed (/vms/100, VM.Audit)\n");
    bob.expect_message(Method::GET, config, &bogus, denied)
        .await;
    let not_in_schema = (
        "bogus",
        "property is not defined in schema and the schema does not allow additional properties",
    );
    let body = root
        .expect_param_error(Method::GET, config, &bogus, not_in_schema)
        .await;
    assert_eq!(body["message"], "Parameter verification failed.\n");

    // The same order where the permission spec is one the router cannot express in a table
    // (userid-param, userid-group, perm-modify): bob may not create users or change ACLs, and
    // hears that before anything about his parameters.
    let bad = [
        ("userid", "carol@pve"),
        ("bogus", "1"),
        ("email", "not an address"),
    ];
    bob.expect(Method::POST, "/access/users", &bad, 403).await;
    let acl = [("path", "/vms"), ("roles", "PVEAdmin"), ("bogus", "1")];
    bob.expect(Method::PUT, "/access/acl", &acl, 403).await;
    // Root passes the check and meets validation.
    root.expect(Method::POST, "/access/users", &bad, 400).await;
}

#[tokio::test]
async fn parameter_errors_are_reported_per_parameter() {
    let (_sim, root) = start_root().await;
    let bad = [
        ("vmid", "50"),
        ("cores", "many"),
        ("start", "true"),
        ("net0", "virtio,bogus=1"),
    ];
    let body = root
        .expect(Method::POST, "/nodes/pve/qemu", &bad, 400)
        .await;
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
    let body = api
        .expect(Method::GET, "/nodes/pve/qemu/777/config", &[], 500)
        .await;
    assert_eq!(body, json!({"data": null}));
    let ticket = api.ticket();
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
    let (sim, root) = start_root().await;
    let extjs = Api {
        base: sim.url().replace("/api2/json", "/api2/extjs"),
        ..root
    };
    let missing = "Configuration file 'nodes/pve/qemu-server/4711.conf' does not exist\n";
    let body = extjs
        .expect_message(
            Method::GET,
            "/nodes/pve/qemu/4711/config",
            &[],
            (200, missing),
        )
        .await;
    assert_eq!(body["success"], json!(0));
    assert_eq!(body["status"], json!(500));
    let (code, body) = extjs.call(Method::GET, "/version", &[]).await;
    assert_eq!((code, body["success"].clone()), (200, json!(1)));
    assert_eq!(body["data"]["release"], "9.1");
    // Authentication failures stay real 401s.
    let anonymous = Api {
        auth: Auth::None,
        ..extjs
    };
    anonymous.expect(Method::GET, "/version", &[], 401).await;
}

#[tokio::test]
async fn answers_over_one_kib_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let sim = start_with(fast_config(), true).await;
    let api = Api::root(&sim).await;
    for id in ["100", "101", "102"] {
        create_vm_ok(&api, id, &[]).await;
    }
    let ticket = api.ticket();
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
    let (_sim, root) = start_root().await;
    let lookup = "hostname lookup 'nowhere' failed - failed to get address info for: nowhere: Name or service not known\n";
    root.expect_message(Method::GET, "/nodes/nowhere/qemu", &[], (500, lookup))
        .await;
}

#[tokio::test]
async fn odd_inputs_get_answers_not_crashes() {
    let (_sim, api) = start_root().await;
    create_vm_ok(&api, "114", &[]).await;
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
    // The simulator still answers.
    api.expect(Method::GET, "/version", &[], 200).await;
}
