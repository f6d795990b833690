//! The `/access` API over HTTP against an embedded simulator, as a PVE client sees it.

use serde_json::{Value, json};

use crate::{PveVersion, RunningSim, SimOptions, SimServer};

/// A started plain-HTTP PVE 8.4 simulator and an API token of root@pam (no privilege
/// separation).
async fn start() -> (RunningSim, String) {
    start_as(PveVersion::Pve8_4).await
}

/// [`start`] as `version`.
async fn start_as(version: PveVersion) -> (RunningSim, String) {
    let mut opts = SimOptions::new("root-password-1");
    opts.insecure_http = true;
    opts.config.pve_version = version;
    let sim = match SimServer::start(opts).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    };
    let secret = sim.with_state(|s| {
        s.access
            .token_add("root@pam", "test", Some(false), None, None)
    });
    let Ok(secret) = secret else {
        panic!("root token: {secret:?}");
    };
    (sim, format!("PVEAPIToken=root@pam!test={secret}"))
}

/// One API call: status, reason phrase and JSON body.
async fn call(
    sim: &RunningSim,
    auth: &str,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", sim.url());
    let req = if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
        client.request(method, &url).query(form)
    } else {
        client.request(method, &url).form(form)
    };
    let resp = match req.header("Authorization", auth).send().await {
        Ok(r) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let status = resp.status();
    let reason = status.canonical_reason().unwrap_or("").to_string();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status.as_u16(), reason, body)
}

use reqwest::Method;

/// Logs in with a password; returns the cookie header and the CSRF token.
async fn login(sim: &RunningSim, user: &str, password: &str) -> Option<(String, String)> {
    let resp = reqwest::Client::new()
        .post(format!("{}/access/ticket", sim.url()))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .ok()?;
    let body: Value = resp.json().await.ok()?;
    let ticket = body["data"]["ticket"].as_str()?;
    let csrf = body["data"]["CSRFPreventionToken"].as_str()?;
    Some((format!("PVEAuthCookie={ticket}"), csrf.to_string()))
}

/// `PUT /access/password` with a ticket (API tokens may not call it).
async fn put_password(
    sim: &RunningSim,
    session: &(String, String),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}/access/password", sim.url()))
        .header("Cookie", &session.0)
        .header("CSRFPreventionToken", &session.1)
        .form(form)
        .send()
        .await;
    match resp {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(e) => panic!("password change: {e}"),
    }
}

#[tokio::test]
async fn token_create_answers_full_tokenid_info_and_value_that_authenticates() {
    let (sim, root) = start().await;
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[
            ("userid", "ci@pve"),
            ("password", "long-enough-1"),
            ("comment", "CI user"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users/ci@pve/token/deploy",
        &[("comment", "for CI")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["full-tokenid"], json!("ci@pve!deploy"));
    assert_eq!(data["info"]["privsep"], json!(1), "the default is a number");
    assert_eq!(data["info"]["comment"], json!("for CI"));
    let value = data["value"].as_str().unwrap_or_default().to_string();
    assert_eq!(value.len(), 36);

    // The new token works, and as a privsep token without ACLs it has no privileges.
    let tok = format!("PVEAPIToken=ci@pve!deploy={value}");
    let (code, _, body) = call(&sim, &tok, Method::GET, "/access/permissions", &[]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"], json!({}));

    let (code, _, body) = call(&sim, &root, Method::GET, "/access/users/ci@pve/token", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(body["data"][0]["tokenid"], json!("deploy"));
    assert_eq!(body["data"][0]["privsep"], json!(1));

    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users/ci@pve/token/deploy",
        &[],
    )
    .await;
    assert_eq!(code, 400, "a second token of the same name fails");
    assert_eq!(body["errors"]["tokenid"], json!("Token already exists."));

    let (code, _, _) = call(
        &sim,
        &root,
        Method::DELETE,
        "/access/users/ci@pve/token/deploy",
        &[],
    )
    .await;
    assert_eq!(code, 200);
    let (code, _, _) = call(&sim, &tok, Method::GET, "/access/permissions", &[]).await;
    assert_eq!(code, 401, "a removed token no longer authenticates");
    sim.shutdown().await;
}

#[tokio::test]
async fn acl_grants_show_up_in_permissions_and_in_the_acl_list() {
    let (sim, root) = start().await;
    for (path, form) in [
        ("/access/groups", vec![("groupid", "ops")]),
        (
            "/access/users",
            vec![("userid", "op@pve"), ("groups", "ops")],
        ),
        (
            "/access/roles",
            vec![("roleid", "Starter"), ("privs", "VM.Audit,VM.PowerMgmt")],
        ),
    ] {
        let (code, _, body) = call(&sim, &root, Method::POST, path, &form).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/acl",
        &[("path", "/vms"), ("groups", "ops"), ("roles", "Starter")],
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let (_, _, body) = call(
        &sim,
        &root,
        Method::GET,
        "/access/permissions",
        &[("userid", "op@pve"), ("path", "/vms/100")],
    )
    .await;
    assert_eq!(
        body["data"],
        json!({"/vms/100": {"VM.Audit": 1, "VM.PowerMgmt": 1}})
    );

    let (_, _, body) = call(&sim, &root, Method::GET, "/access/acl", &[]).await;
    assert_eq!(
        body["data"],
        json!([{"path": "/vms", "type": "group", "ugid": "ops", "roleid": "Starter", "propagate": 1}])
    );
    let (code, _, body) = call(&sim, &root, Method::GET, "/access/users/nobody@pve", &[]).await;
    assert_eq!(code, 500);
    assert_eq!(body["message"], json!("no such user ('nobody@pve')\n"));
    let (_, _, body) = call(&sim, &root, Method::GET, "/access/users/op@pve", &[]).await;
    assert_eq!(body["data"]["groups"], json!(["ops"]));
    assert_eq!(body["data"]["enable"], json!(1));
    sim.shutdown().await;
}

#[tokio::test]
async fn unprivileged_callers_get_pve_403s_and_bad_parameters_get_400s() {
    let (sim, root) = start().await;
    let (code, _, _) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[("userid", "joe@pve")],
    )
    .await;
    assert_eq!(code, 200);
    let (_, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users/joe@pve/token/tk",
        &[("privsep", "0")],
    )
    .await;
    assert_eq!(body["data"]["full-tokenid"], json!("joe@pve!tk"), "{body}");
    assert_eq!(
        body["data"]["info"]["privsep"],
        json!("0"),
        "a given privsep is echoed as the string PVE received"
    );
    let joe = format!(
        "PVEAPIToken=joe@pve!tk={}",
        body["data"]["value"].as_str().unwrap_or_default()
    );

    let (code, reason, body) = call(
        &sim,
        &joe,
        Method::POST,
        "/access/users",
        &[("userid", "eve@pve")],
    )
    .await;
    assert_eq!(code, 403, "{reason} {body}");
    assert_eq!(
        body["message"],
        json!("Permission check failed (/access/realm/pve, Realm.AllocateUser)\n")
    );
    let (code, _, body) = call(
        &sim,
        &joe,
        Method::POST,
        "/access/roles",
        &[("roleid", "X")],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        json!("Permission check failed (/access, Sys.Modify)\n")
    );
    let (code, _, body) = call(
        &sim,
        &joe,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/vms/100"),
            ("users", "joe@pve"),
            ("roles", "Administrator"),
        ],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        json!("Permission check failed (/vms/100, Permissions.Modify|VM.Allocate)\n")
    );
    let (code, _, _) = call(
        &sim,
        &joe,
        Method::GET,
        "/access/permissions",
        &[("userid", "root@pam")],
    )
    .await;
    assert_eq!(
        code, 403,
        "another user's permissions need Sys.Audit on /access"
    );

    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/roles",
        &[("roleid", "Bad"), ("privs", "VM.Audit,VM.GuestAgent.Audit")],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errors"]["privs"],
        json!("invalid format - invalid privilege 'VM.GuestAgent.Audit'\n")
    );
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/nowhere"),
            ("users", "joe@pve"),
            ("roles", "PVEAuditor"),
        ],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["errors"]["path"], json!("invalid ACL path '/nowhere'"));
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[("userid", "short@pve"), ("password", "abc")],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["errors"]["password"],
        json!("value must be at least 8 characters long")
    );
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[("userid", "joe@pve")],
    )
    .await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        json!("create user failed: user 'joe@pve' already exists\n")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn users_change_their_own_password_with_confirmation_and_tokens_cannot() {
    let (sim, root) = start().await;
    let (code, _, _) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[("userid", "amy@pve"), ("password", "first-pass-1")],
    )
    .await;
    assert_eq!(code, 200);
    let (code, _, _) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/password",
        &[("userid", "amy@pve"), ("password", "second-pass-2")],
    )
    .await;
    assert_eq!(code, 403, "allowtoken => 0");

    let Some(root_session) = login(&sim, "root@pam", "root-password-1").await else {
        panic!("root login failed");
    };
    let (code, body) = put_password(
        &sim,
        &root_session,
        &[("userid", "amy@pve"), ("password", "second-pass-2")],
    )
    .await;
    assert_eq!(code, 200, "root needs no confirmation: {body}");
    assert!(sim.with_state(|s| s.access.verify_password("amy@pve", "second-pass-2")));

    let Some(amy) = login(&sim, "amy@pve", "second-pass-2").await else {
        panic!("amy login failed");
    };
    let (code, body) = put_password(
        &sim,
        &amy,
        &[("userid", "amy@pve"), ("password", "third-pass-3")],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errors"]["confirmation-password"],
        json!("password is required to modify user")
    );
    let (code, _) = put_password(
        &sim,
        &amy,
        &[
            ("userid", "amy@pve"),
            ("password", "third-pass-3"),
            ("confirmation-password", "second-pass-2"),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert!(sim.with_state(|s| s.access.verify_password("amy@pve", "third-pass-3")));
    let (code, _) = put_password(
        &sim,
        &amy,
        &[
            ("userid", "root@pam"),
            ("password", "hijacked-123"),
            ("confirmation-password", "third-pass-3"),
        ],
    )
    .await;
    assert_eq!(code, 403);
    assert!(sim.with_state(|s| s.access.verify_password("root@pam", "root-password-1")));

    let (code, _, body) = call(&sim, &root, Method::GET, "/access/roles", &[]).await;
    assert_eq!(code, 200);
    let roles = body["data"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(roles, 17, "the built-in roles: {body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn vm_allocators_may_only_hand_out_roles_they_hold() {
    let (sim, root) = start().await;
    for user in ["lead@pve", "dev@pve"] {
        let (code, _, _) = call(
            &sim,
            &root,
            Method::POST,
            "/access/users",
            &[("userid", user)],
        )
        .await;
        assert_eq!(code, 200);
    }
    let (code, _, _) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/vms/100"),
            ("users", "lead@pve"),
            ("roles", "PVEVMAdmin"),
            ("propagate", "0"),
        ],
    )
    .await;
    assert_eq!(code, 200);
    let (_, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users/lead@pve/token/tk",
        &[("privsep", "0")],
    )
    .await;
    let lead = format!(
        "PVEAPIToken=lead@pve!tk={}",
        body["data"]["value"].as_str().unwrap_or_default()
    );

    // VM.Allocate on /vms/100 passes perm-modify, but Administrator is more than lead has.
    let (code, reason, body) = call(
        &sim,
        &lead,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/vms/100"),
            ("users", "dev@pve"),
            ("roles", "Administrator"),
            ("propagate", "0"),
        ],
    )
    .await;
    assert_eq!(code, 500, "{reason} {body}");
    assert_eq!(
        body["message"],
        json!(
            "ACL update failed: 400 Parameter verification failed.\nrole: Cannot add role 'Administrator' - requires 'Permissions.Modify' or superset of privileges.\n"
        )
    );
    // lead holds PVEVMAdmin there only without propagation.
    let (code, _, body) = call(
        &sim,
        &lead,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/vms/100"),
            ("users", "dev@pve"),
            ("roles", "PVEVMUser"),
        ],
    )
    .await;
    assert_eq!(code, 500);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("with propagation")),
        "{body}"
    );
    let (code, _, body) = call(
        &sim,
        &lead,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/vms/100"),
            ("users", "dev@pve"),
            ("roles", "PVEVMUser"),
            ("propagate", "0"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(sim.with_state(|s| {
        s.access
            .check("dev@pve", "/vms/100", &["VM.Console"], false)
    }));

    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/acl",
        &[("path", "/vms"), ("roles", "PVEAuditor")],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["errors"]["users"],
        json!("either 'users', 'groups' or 'tokens' is required.")
    );
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/roles",
        &[("roleid", "PVEOperator")],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["errors"]["roleid"],
        json!("cannot use role ID starting with the (case-insensitive) 'PVE' namespace")
    );
    let (code, _, body) = call(&sim, &root, Method::DELETE, "/access/roles/PVEVMUser", &[]).await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        json!("auto-generated role 'PVEVMUser' cannot be deleted\n")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pools_hold_storages_whose_pool_acls_apply_and_must_be_emptied_before_deletion() {
    let (sim, root) = start().await;
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/pools",
        &[("poolid", "team"), ("comment", "Team")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/pools",
        &[("poolid", "team"), ("storage", "local-lvm")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(&sim, &root, Method::GET, "/pools", &[("poolid", "team")]).await;
    assert_eq!(code, 200);
    assert_eq!(body["data"][0]["comment"], json!("Team"));
    assert_eq!(body["data"][0]["members"][0]["storage"], json!("local-lvm"));
    assert_eq!(body["data"][0]["members"][0]["type"], json!("storage"));

    let (code, _, _) = call(
        &sim,
        &root,
        Method::POST,
        "/access/users",
        &[("userid", "ops@pve")],
    )
    .await;
    assert_eq!(code, 200);
    let (code, _, _) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/acl",
        &[
            ("path", "/pool/team"),
            ("users", "ops@pve"),
            ("roles", "PVEDatastoreUser"),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert!(sim.with_state(|s| s.access.check(
        "ops@pve",
        "/storage/local-lvm",
        &["Datastore.AllocateSpace"],
        false
    )));

    let (code, _, body) = call(&sim, &root, Method::DELETE, "/pools", &[("poolid", "team")]).await;
    assert_eq!(code, 500);
    assert_eq!(
        body["message"],
        json!("delete pool failed: pool 'team' is not empty (contains storage 'local-lvm')\n")
    );
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/pools/team",
        &[("storage", "local-lvm"), ("delete", "1")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, _) = call(&sim, &root, Method::DELETE, "/pools/team", &[]).await;
    assert_eq!(code, 200);
    assert!(!sim.with_state(|s| s.access.check(
        "ops@pve",
        "/storage/local-lvm",
        &["Datastore.AllocateSpace"],
        false
    )));
    let (code, _, body) = call(&sim, &root, Method::GET, "/pools", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(body["data"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn realms_are_listed_without_authentication() {
    let (sim, _root) = start().await;
    let resp = reqwest::get(format!("{}/access/domains", sim.url())).await;
    let Ok(resp) = resp else {
        panic!("request failed: {resp:?}");
    };
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let realms: Vec<&str> = body["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["realm"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(realms, ["pam", "pve"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn pve9_refuses_vm_monitor_in_role_definitions_with_pves_schema_error() {
    let (sim, root) = start_as(PveVersion::Pve9_1).await;
    let monitor_error = json!({"privs": "invalid format - invalid privilege 'VM.Monitor'\n"});
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/roles",
        &[("roleid", "Watcher"), ("privs", "VM.Audit,VM.Monitor")],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"], monitor_error);
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/roles",
        &[
            ("roleid", "Watcher"),
            ("privs", "VM.Audit,VM.GuestAgent.Audit"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/roles/Watcher",
        &[("privs", "VM.Monitor"), ("append", "1")],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"], monitor_error);
    let (_, _, body) = call(&sim, &root, Method::GET, "/access/roles/Watcher", &[]).await;
    let privs: Vec<&str> = body["data"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(privs, ["VM.Audit", "VM.GuestAgent.Audit"], "{body}");

    // The built-in roles and root's privileges are 9.1's.
    let (_, _, body) = call(&sim, &root, Method::GET, "/access/roles/PVEVMUser", &[]).await;
    assert_eq!(body["data"]["VM.GuestAgent.FileRead"], json!(1), "{body}");
    let (_, _, body) = call(
        &sim,
        &root,
        Method::GET,
        "/access/permissions",
        &[("path", "/")],
    )
    .await;
    let root_privs = body["data"]["/"].as_object().map(|m| m.len());
    assert_eq!(root_privs, Some(47), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pve8_still_takes_vm_monitor_and_refuses_the_guest_agent_privileges() {
    let (sim, root) = start().await;
    let (code, _, body) = call(
        &sim,
        &root,
        Method::POST,
        "/access/roles",
        &[("roleid", "Watcher"), ("privs", "VM.Audit,VM.Monitor")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(
        &sim,
        &root,
        Method::PUT,
        "/access/roles/Watcher",
        &[("privs", "VM.Replicate")],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errors"],
        json!({"privs": "invalid format - invalid privilege 'VM.Replicate'\n"})
    );
    sim.shutdown().await;
}
