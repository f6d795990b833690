use std::collections::BTreeMap;

use super::args::parse_args;
use super::commands::find_command;
use super::session::{error_text, fill_path};
use super::*;

/// The words of a command line (no quoting: the tests' arguments have no spaces).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A started plain-HTTP simulator of `version` with the root password `root-pw-123`.
async fn start_sim(version: crate::PveVersion) -> crate::RunningSim {
    let mut opts = crate::SimOptions::new("root-pw-123");
    opts.insecure_http = true;
    opts.config.pve_version = version;
    match crate::SimServer::start(opts).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}

/// Runs the pveum command line `line` as root against `url`.
async fn pveum(url: &str, line: &str) -> anyhow::Result<()> {
    let args = words(line);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(PveumArgs::new(url, "root-pw-123", &args)).await
}

#[test]
fn documented_aclmod_line_maps_to_put_acl_with_abbreviated_options() {
    let args = words("aclmod / -user omni@pve -role Provisioner -propagate 0");
    let Some((spec, rest)) = find_command(&args) else {
        panic!("aclmod not found");
    };
    assert_eq!((spec.method, spec.path), ("PUT", "/access/acl"));
    let parsed = parse_args(spec, rest).unwrap_or_default();
    let want: BTreeMap<String, String> = [
        ("path", "/"),
        ("users", "omni@pve"),
        ("roles", "Provisioner"),
        ("propagate", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(parsed.params, want);
}

#[test]
fn token_add_takes_user_tokenid_and_privsep() {
    let args = words("user token add omni@pve omni-provider --privsep 0");
    let Some((spec, rest)) = find_command(&args) else {
        panic!("user token add not found");
    };
    let mut parsed = parse_args(spec, rest).unwrap_or_default();
    assert_eq!(parsed.params.get("privsep").map(String::as_str), Some("0"));
    let path = fill_path(spec.path, &mut parsed.params);
    assert_eq!(path, "/access/users/omni@pve/token/omni-provider");
    assert_eq!(parsed.params.len(), 1, "path parameters leave the form");
}

#[test]
fn unknown_or_ambiguous_options_and_missing_arguments_are_refused() {
    let args = words("role add X -bogus 1");
    let Some((spec, rest)) = find_command(&args) else {
        panic!("role add not found");
    };
    assert!(parse_args(spec, rest).is_err());
    let args = words("user token add omni@pve");
    let Some((spec, rest)) = find_command(&args) else {
        panic!("user token add not found");
    };
    assert!(parse_args(spec, rest).is_err());
    assert!(find_command(&words("frobnicate")).is_none());
}

#[test]
fn output_format_may_follow_the_command_and_errors_read_like_pveum() {
    let mut cmd = words("user list --output-format json");
    assert_eq!(
        take_output_format(&mut cmd).ok().flatten().as_deref(),
        Some("json")
    );
    assert_eq!(cmd, words("user list"));
    let body = serde_json::json!({
        "data": null,
        "message": "Parameter verification failed.\n",
        "errors": {"roleid": "cannot use role ID starting with the (case-insensitive) 'PVE' namespace"},
    });
    assert_eq!(
        error_text(400, "400 Bad Request", &body),
        "400 Parameter verification failed.\nroleid: cannot use role ID starting with the (case-insensitive) 'PVE' namespace"
    );
    let body = serde_json::json!({"data": null, "message": "create user failed: user 'a@pve' already exists\n"});
    assert_eq!(
        error_text(500, "500 Internal Server Error", &body),
        "create user failed: user 'a@pve' already exists"
    );
}

#[test]
fn debug_output_hides_the_root_password() {
    let args = PveumArgs::new("http://127.0.0.1:1", "hunter2-secret", &["user", "list"]);
    let text = format!("{args:?}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("***"));
}

#[tokio::test]
async fn a_guides_setup_steps_run_against_an_embedded_simulator() {
    let sim = start_sim(crate::config::ClusterConfig::default().pve_version).await;
    let url = sim.base_url();
    for step in [
        "role add Provisioner -privs VM.Allocate,VM.Audit,Datastore.AllocateSpace",
        "useradd omni@pve --comment Omni",
        "aclmod / -user omni@pve -role Provisioner",
        "user token add omni@pve omni-provider --privsep 0",
        "pool add omni",
    ] {
        let result = pveum(&url, step).await;
        assert!(result.is_ok(), "{step:?}: {result:?}");
    }
    let (allowed, token_privsep, pool) = sim.with_state(|s| {
        (
            s.access.check(
                "omni@pve!omni-provider",
                "/vms/123",
                &["VM.Allocate"],
                false,
            ),
            s.access
                .token("omni@pve", "omni-provider")
                .map(|t| t.privsep),
            s.access.pool("omni").is_some(),
        )
    });
    assert!(allowed, "the non-privsep token has the user's rights");
    assert_eq!(token_privsep, Some(false));
    assert!(pool);
    let denied = pveum(&url, "aclmod /nowhere -user omni@pve -role Provisioner").await;
    assert!(denied.is_err());
    let bad_login = run(PveumArgs::new(&url, "wrong", &["user", "list"])).await;
    assert!(bad_login.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn role_add_on_9_1_refuses_vm_monitor_like_the_api_and_takes_guest_agent_privileges() {
    let sim = start_sim(crate::PveVersion::Pve9_1).await;
    let url = sim.base_url();
    let refused = pveum(&url, "role add Watcher -privs VM.Audit,VM.Monitor").await;
    let text = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("privs: invalid format - invalid privilege 'VM.Monitor'"),
        "{text}"
    );
    let added = pveum(&url, "role add Watcher -privs VM.GuestAgent.Audit").await;
    assert!(added.is_ok(), "{added:?}");
    let privs = sim.with_state(|s| s.access.role("Watcher"));
    assert_eq!(
        privs.map(|p| p.into_iter().collect::<Vec<_>>()),
        Some(vec!["VM.GuestAgent.Audit".to_string()])
    );
    sim.shutdown().await;
}

#[test]
fn token_answer_prints_as_pveums_key_value_table() {
    let data = serde_json::json!({
        "full-tokenid": "root@pam!monitoring",
        "info": {"privsep": 0},
        "value": "abc",
    });
    let text = render_text(&data);
    let expected = "┌──────────────┬─────────────────────┐\n│ key          │ value               │\n╞══════════════╪═════════════════════╡\n│ full-tokenid │ root@pam!monitoring │\n├──────────────┼─────────────────────┤\n│ info         │ {\"privsep\":0}       │\n├──────────────┼─────────────────────┤\n│ value        │ abc                 │\n└──────────────┴─────────────────────┘\n";
    assert_eq!(text, expected, "\n{text}");
}
