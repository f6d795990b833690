//! The `/access` API over HTTP against an embedded simulator, as a PVE client sees it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{PveVersion, RunningSim, SimOptions, SimServer};

/// A started plain-HTTP PVE 8.4 simulator and an API token of root@pam (no privilege
/// separation).
async fn start() -> (RunningSim, Caller) {
    start_as(PveVersion::Pve8_4).await
}

/// [`start`] as `version`.
async fn start_as(version: PveVersion) -> (RunningSim, Caller) {
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
    let root = Caller::token(&sim, &format!("root@pam!test={secret}"));
    (sim, root)
}

/// A client of one simulator with one API token.
struct Caller {
    url: String,
    auth: String,
}

impl Caller {
    /// The caller with the API token `token` (`user!name=secret`).
    fn token(sim: &RunningSim, token: &str) -> Self {
        Self {
            url: sim.url(),
            auth: format!("PVEAPIToken={token}"),
        }
    }

    /// One API call: status, reason phrase and JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url);
        let req = if method == Method::GET || method == Method::DELETE {
            client.request(method, &url).query(form)
        } else {
            client.request(method, &url).form(form)
        };
        let resp = match req.header("Authorization", &self.auth).send().await {
            Ok(r) => r,
            Err(e) => panic!("{path}: {e}"),
        };
        let status = resp.status();
        let reason = status.canonical_reason().unwrap_or("").to_string();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status.as_u16(), reason, body)
    }

    /// [`Caller::call`] and asserts the status; returns the body.
    async fn expect(&self, method: Method, path: &str, form: &[(&str, &str)], code: u16) -> Value {
        let (got, reason, body) = self.call(method.clone(), path, form).await;
        assert_eq!(got, code, "{method} {path} {form:?}: {reason} {body}");
        body
    }

    /// [`Caller::expect`] and the body's `message`.
    async fn expect_message(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        (code, message): (u16, &str),
    ) -> Value {
        let body = self.expect(method.clone(), path, form, code).await;
        assert_eq!(body["message"], json!(message), "{method} {path} {form:?}");
        body
    }

    /// A 400 whose `errors` name `param` with the text `error`; returns the body.
    async fn expect_param_error(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        (param, error): (&str, &str),
    ) -> Value {
        let body = self.expect(method.clone(), path, form, 400).await;
        assert_eq!(
            body["errors"][param],
            json!(error),
            "{method} {path} {form:?}"
        );
        body
    }

    /// A caller of the same simulator with the API token `token` (`user!name=secret`).
    fn with_token(&self, token: &str) -> Self {
        Self {
            url: self.url.clone(),
            auth: format!("PVEAPIToken={token}"),
        }
    }

    /// Creates the token `user!tk` without privilege separation; returns the answer's `data`
    /// and a caller with that token.
    async fn add_token(&self, user: &str) -> (Value, Caller) {
        let path = format!("/access/users/{user}/token/tk");
        let body = self
            .expect(Method::POST, &path, &[("privsep", "0")], 200)
            .await;
        let secret = body["data"]["value"].as_str().unwrap_or_default();
        let caller = self.with_token(&format!("{user}!tk={secret}"));
        (body["data"].clone(), caller)
    }
}

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
    let ci = [
        ("userid", "ci@pve"),
        ("password", "long-enough-1"),
        ("comment", "CI user"),
    ];
    root.expect(Method::POST, "/access/users", &ci, 200).await;
    let token_path = "/access/users/ci@pve/token/deploy";
    let body = root
        .expect(Method::POST, token_path, &[("comment", "for CI")], 200)
        .await;
    let data = &body["data"];
    assert_eq!(data["full-tokenid"], json!("ci@pve!deploy"));
    assert_eq!(data["info"]["privsep"], json!(1), "the default is a number");
    assert_eq!(data["info"]["comment"], json!("for CI"));
    let value = data["value"].as_str().unwrap_or_default().to_string();
    assert_eq!(value.len(), 36);

    // The new token works, and as a privsep token without ACLs it has no privileges.
    let tok = root.with_token(&format!("ci@pve!deploy={value}"));
    let body = tok
        .expect(Method::GET, "/access/permissions", &[], 200)
        .await;
    assert_eq!(body["data"], json!({}));

    let body = root
        .expect(Method::GET, "/access/users/ci@pve/token", &[], 200)
        .await;
    assert_eq!(body["data"][0]["tokenid"], json!("deploy"));
    assert_eq!(body["data"][0]["privsep"], json!(1));

    // A second token of the same name fails.
    let exists = ("tokenid", "Token already exists.");
    root.expect_param_error(Method::POST, token_path, &[], exists)
        .await;

    root.expect(Method::DELETE, token_path, &[], 200).await;
    // A removed token no longer authenticates.
    tok.expect(Method::GET, "/access/permissions", &[], 401)
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn acl_grants_show_up_in_permissions_and_in_the_acl_list() {
    let (sim, root) = start().await;
    for (method, path, form) in [
        (Method::POST, "/access/groups", vec![("groupid", "ops")]),
        (
            Method::POST,
            "/access/users",
            vec![("userid", "op@pve"), ("groups", "ops")],
        ),
        (
            Method::POST,
            "/access/roles",
            vec![("roleid", "Starter"), ("privs", "VM.Audit,VM.PowerMgmt")],
        ),
        (
            Method::PUT,
            "/access/acl",
            vec![("path", "/vms"), ("groups", "ops"), ("roles", "Starter")],
        ),
    ] {
        root.expect(method, path, &form, 200).await;
    }

    let op_on_100 = [("userid", "op@pve"), ("path", "/vms/100")];
    let (_, _, body) = root
        .call(Method::GET, "/access/permissions", &op_on_100)
        .await;
    assert_eq!(
        body["data"],
        json!({"/vms/100": {"VM.Audit": 1, "VM.PowerMgmt": 1}})
    );

    let (_, _, body) = root.call(Method::GET, "/access/acl", &[]).await;
    assert_eq!(
        body["data"],
        json!([{"path": "/vms", "type": "group", "ugid": "ops", "roleid": "Starter", "propagate": 1}])
    );
    let no_user = (500, "no such user ('nobody@pve')\n");
    root.expect_message(Method::GET, "/access/users/nobody@pve", &[], no_user)
        .await;
    let (_, _, body) = root.call(Method::GET, "/access/users/op@pve", &[]).await;
    assert_eq!(body["data"]["groups"], json!(["ops"]));
    assert_eq!(body["data"]["enable"], json!(1));
    sim.shutdown().await;
}

#[tokio::test]
async fn unprivileged_callers_get_pve_403s_and_bad_parameters_get_400s() {
    let (sim, root) = start().await;
    let joe = [("userid", "joe@pve")];
    root.expect(Method::POST, "/access/users", &joe, 200).await;
    let (data, joe_token) = root.add_token("joe@pve").await;
    assert_eq!(data["full-tokenid"], json!("joe@pve!tk"), "{data}");
    assert_eq!(
        data["info"]["privsep"],
        json!("0"),
        "a given privsep is echoed as the string PVE received"
    );

    let denied = |what: &str| format!("Permission check failed ({what})\n");
    for (method, path, form, refusal) in [
        (
            Method::POST,
            "/access/users",
            vec![("userid", "eve@pve")],
            denied("/access/realm/pve, Realm.AllocateUser"),
        ),
        (
            Method::POST,
            "/access/roles",
            vec![("roleid", "X")],
            denied("/access, Sys.Modify"),
        ),
        (
            Method::PUT,
            "/access/acl",
            vec![
                ("path", "/vms/100"),
                ("users", "joe@pve"),
                ("roles", "Administrator"),
            ],
            denied("/vms/100, Permissions.Modify|VM.Allocate"),
        ),
    ] {
        joe_token
            .expect_message(method, path, &form, (403, &refusal))
            .await;
    }
    // Another user's permissions need Sys.Audit on /access.
    let others = [("userid", "root@pam")];
    joe_token
        .expect(Method::GET, "/access/permissions", &others, 403)
        .await;

    for (method, path, form, error) in [
        (
            Method::POST,
            "/access/roles",
            vec![("roleid", "Bad"), ("privs", "VM.Audit,VM.GuestAgent.Audit")],
            (
                "privs",
                "invalid format - invalid privilege 'VM.GuestAgent.Audit'\n",
            ),
        ),
        (
            Method::PUT,
            "/access/acl",
            vec![
                ("path", "/nowhere"),
                ("users", "joe@pve"),
                ("roles", "PVEAuditor"),
            ],
            ("path", "invalid ACL path '/nowhere'"),
        ),
        (
            Method::POST,
            "/access/users",
            vec![("userid", "short@pve"), ("password", "abc")],
            ("password", "value must be at least 8 characters long"),
        ),
    ] {
        root.expect_param_error(method, path, &form, error).await;
    }
    let exists = (500, "create user failed: user 'joe@pve' already exists\n");
    root.expect_message(Method::POST, "/access/users", &joe, exists)
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn users_change_their_own_password_with_confirmation_and_tokens_cannot() {
    let (sim, root) = start().await;
    let amy = [("userid", "amy@pve"), ("password", "first-pass-1")];
    root.expect(Method::POST, "/access/users", &amy, 200).await;
    // allowtoken => 0
    let second = [("userid", "amy@pve"), ("password", "second-pass-2")];
    root.expect(Method::PUT, "/access/password", &second, 403)
        .await;

    let Some(root_session) = login(&sim, "root@pam", "root-password-1").await else {
        panic!("root login failed");
    };
    let (code, body) = put_password(&sim, &root_session, &second).await;
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
    // With her confirmation amy changes her own password, and not root's; the password that
    // holds afterwards.
    for (userid, password, confirmation, code, holds) in [
        (
            "amy@pve",
            "third-pass-3",
            "second-pass-2",
            200,
            "third-pass-3",
        ),
        (
            "root@pam",
            "hijacked-123",
            "third-pass-3",
            403,
            "root-password-1",
        ),
    ] {
        let form = [
            ("userid", userid),
            ("password", password),
            ("confirmation-password", confirmation),
        ];
        let (got, body) = put_password(&sim, &amy, &form).await;
        assert_eq!(got, code, "{form:?}: {body}");
        assert!(
            sim.with_state(|s| s.access.verify_password(userid, holds)),
            "{form:?}"
        );
    }

    let body = root.expect(Method::GET, "/access/roles", &[], 200).await;
    let roles = body["data"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(roles, 17, "the built-in roles: {body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn vm_allocators_may_only_hand_out_roles_they_hold() {
    let (sim, root) = start().await;
    for user in ["lead@pve", "dev@pve"] {
        root.expect(Method::POST, "/access/users", &[("userid", user)], 200)
            .await;
    }
    let lead_acl = [
        ("path", "/vms/100"),
        ("users", "lead@pve"),
        ("roles", "PVEVMAdmin"),
        ("propagate", "0"),
    ];
    root.expect(Method::PUT, "/access/acl", &lead_acl, 200)
        .await;
    let (_, lead) = root.add_token("lead@pve").await;

    // VM.Allocate on /vms/100 passes perm-modify, but Administrator is more than lead has.
    let administrator = [
        ("path", "/vms/100"),
        ("users", "dev@pve"),
        ("roles", "Administrator"),
        ("propagate", "0"),
    ];
    let too_much = "ACL update failed: 400 Parameter verification failed.\nrole: Cannot add role 'Administrator' - requires 'Permissions.Modify' or superset of privileges.\n";
    lead.expect_message(Method::PUT, "/access/acl", &administrator, (500, too_much))
        .await;
    // lead holds PVEVMAdmin there only without propagation.
    let mut vm_user = vec![
        ("path", "/vms/100"),
        ("users", "dev@pve"),
        ("roles", "PVEVMUser"),
    ];
    let body = lead.expect(Method::PUT, "/access/acl", &vm_user, 500).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("with propagation")),
        "{body}"
    );
    vm_user.push(("propagate", "0"));
    lead.expect(Method::PUT, "/access/acl", &vm_user, 200).await;
    assert!(sim.with_state(|s| {
        s.access
            .check("dev@pve", "/vms/100", &["VM.Console"], false)
    }));

    let nobody = [("path", "/vms"), ("roles", "PVEAuditor")];
    let members = ("users", "either 'users', 'groups' or 'tokens' is required.");
    root.expect_param_error(Method::PUT, "/access/acl", &nobody, members)
        .await;
    let namespace = (
        "roleid",
        "cannot use role ID starting with the (case-insensitive) 'PVE' namespace",
    );
    let operator = [("roleid", "PVEOperator")];
    root.expect_param_error(Method::POST, "/access/roles", &operator, namespace)
        .await;
    let builtin = (500, "auto-generated role 'PVEVMUser' cannot be deleted\n");
    root.expect_message(Method::DELETE, "/access/roles/PVEVMUser", &[], builtin)
        .await;
    sim.shutdown().await;
}

/// Whether ops@pve may allocate space on local-lvm.
fn ops_may_allocate(sim: &RunningSim) -> bool {
    sim.with_state(|s| {
        s.access.check(
            "ops@pve",
            "/storage/local-lvm",
            &["Datastore.AllocateSpace"],
            false,
        )
    })
}

#[tokio::test]
async fn pools_hold_storages_whose_pool_acls_apply_and_must_be_emptied_before_deletion() {
    let (sim, root) = start().await;
    let team = [("poolid", "team")];
    let comment = [("poolid", "team"), ("comment", "Team")];
    root.expect(Method::POST, "/pools", &comment, 200).await;
    let storage = [("poolid", "team"), ("storage", "local-lvm")];
    root.expect(Method::PUT, "/pools", &storage, 200).await;
    let body = root.expect(Method::GET, "/pools", &team, 200).await;
    assert_eq!(body["data"][0]["comment"], json!("Team"));
    assert_eq!(body["data"][0]["members"][0]["storage"], json!("local-lvm"));
    assert_eq!(body["data"][0]["members"][0]["type"], json!("storage"));

    let ops = [("userid", "ops@pve")];
    root.expect(Method::POST, "/access/users", &ops, 200).await;
    let grant = [
        ("path", "/pool/team"),
        ("users", "ops@pve"),
        ("roles", "PVEDatastoreUser"),
    ];
    root.expect(Method::PUT, "/access/acl", &grant, 200).await;
    assert!(ops_may_allocate(&sim));

    let not_empty = "delete pool failed: pool 'team' is not empty (contains storage 'local-lvm')\n";
    root.expect_message(Method::DELETE, "/pools", &team, (500, not_empty))
        .await;
    let remove = [("storage", "local-lvm"), ("delete", "1")];
    root.expect(Method::PUT, "/pools/team", &remove, 200).await;
    root.expect(Method::DELETE, "/pools/team", &[], 200).await;
    assert!(!ops_may_allocate(&sim));
    let body = root.expect(Method::GET, "/pools", &[], 200).await;
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
    let monitor = [("roleid", "Watcher"), ("privs", "VM.Audit,VM.Monitor")];
    let body = root
        .expect(Method::POST, "/access/roles", &monitor, 400)
        .await;
    assert_eq!(body["errors"], monitor_error);
    let agent = [
        ("roleid", "Watcher"),
        ("privs", "VM.Audit,VM.GuestAgent.Audit"),
    ];
    root.expect(Method::POST, "/access/roles", &agent, 200)
        .await;
    let append = [("privs", "VM.Monitor"), ("append", "1")];
    let body = root
        .expect(Method::PUT, "/access/roles/Watcher", &append, 400)
        .await;
    assert_eq!(body["errors"], monitor_error);
    let (_, _, body) = root.call(Method::GET, "/access/roles/Watcher", &[]).await;
    let privs: Vec<&str> = body["data"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(privs, ["VM.Audit", "VM.GuestAgent.Audit"], "{body}");

    // The built-in roles and root's privileges are 9.1's.
    let (_, _, body) = root.call(Method::GET, "/access/roles/PVEVMUser", &[]).await;
    assert_eq!(body["data"]["VM.GuestAgent.FileRead"], json!(1), "{body}");
    let (_, _, body) = root
        .call(Method::GET, "/access/permissions", &[("path", "/")])
        .await;
    let root_privs = body["data"]["/"].as_object().map(|m| m.len());
    assert_eq!(root_privs, Some(47), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pve8_still_takes_vm_monitor_and_refuses_the_guest_agent_privileges() {
    let (sim, root) = start().await;
    let monitor = [("roleid", "Watcher"), ("privs", "VM.Audit,VM.Monitor")];
    root.expect(Method::POST, "/access/roles", &monitor, 200)
        .await;
    let replicate = [("privs", "VM.Replicate")];
    let body = root
        .expect(Method::PUT, "/access/roles/Watcher", &replicate, 400)
        .await;
    assert_eq!(
        body["errors"],
        json!({"privs": "invalid format - invalid privilege 'VM.Replicate'\n"})
    );
    sim.shutdown().await;
}
