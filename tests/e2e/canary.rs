//! Canary secrets through the controller: with its default connection (`--config`) failing in
//! every way it can, nothing it writes (MachineRequest status conditions, Events) and nothing it
//! returns carries a token secret, a password or URL userinfo, even when Proxmox quotes the
//! secret back in an error or a task's exit status.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::runtime::wait::await_condition;
use pve_operator::cli::run::{RunArgs, run_with_client};
use pve_operator_api::MachineRequest;
use pve_sim::RunningSim;
use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};
use serde_json::json;

use crate::support::{Harness, within};

const PASSWORD_CANARY: &str = "CANARY-pw-5e1f0c2d9b";
const TOKEN_CANARY: &str = "c4n4ry00-1111-4222-8333-444455556666";

fn spec() -> serde_json::Value {
    json!({
        "memory": { "sizeMiB": 512 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "network": {} },
    })
}

fn assert_clean(what: &str, text: &str, canaries: &[&str]) {
    for c in canaries {
        assert!(!text.contains(c), "{what} carries the canary {c:?}: {text}");
    }
}

/// Waits until the request reports a failure (a condition False with a message), then checks
/// its whole status and every Event of the namespace for the canaries.
async fn assert_reported_without(h: &Harness, name: &str, canaries: &[&str], expect: &str) {
    assert!(!expect.is_empty());
    let failed = |obj: Option<&MachineRequest>| {
        obj.and_then(|o| o.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.status == "False" && c.message.contains(expect))
        })
    };
    let reported = within(
        "the request to report the failure",
        await_condition(h.requests(), name, failed),
    )
    .await;
    let request = match reported {
        Ok(Some(r)) => r,
        other => {
            let now = h.requests().get_opt(name).await.ok().flatten();
            panic!(
                "{name}: no condition saying {expect:?} ({:?}); status: {:#?}",
                other.map(|r| r.is_some()),
                now.and_then(|o| o.status)
            )
        }
    };
    let status = serde_json::to_string(&request.status).expect("status serializes");
    assert_clean(&format!("{name} status"), &status, canaries);
    let events: Api<Event> = Api::namespaced(h.client.clone(), &h.namespace);
    let all = events.list(&Default::default()).await.expect("events");
    let text = serde_json::to_string(&all.items).expect("events serialize");
    assert_clean(&format!("{name} events"), &text, canaries);
}

/// A root@pam API token in the simulator; its secret (a fresh UUID) is the canary.
fn root_token(sim: &RunningSim) -> String {
    sim.with_state(|s| {
        s.access
            .token_add("root@pam", "canary", Some(false), None, None)
    })
    .expect("token added")
}

fn token_config(url: &str, fingerprint: &str, secret: &str) -> String {
    format!(
        "proxmox:\n  url: \"{url}\"\n  fingerprint: \"{fingerprint}\"\n  tokenID: \"root@pam!canary\"\n  tokenSecret: \"{secret}\"\n"
    )
}

#[tokio::test]
async fn a_config_with_userinfo_or_a_misplaced_secret_is_refused_without_quoting_it() {
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    crate::crds::install_crds(&client).await;
    let ns = env
        .create_namespace(&client, "canary-config")
        .await
        .expect("namespace");
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_lines =
        format!("  tokenID: \"root@pam!canary\"\n  tokenSecret: \"{TOKEN_CANARY}\"\n");
    let docs = [
        format!(
            "proxmox:\n  url: \"https://root:{PASSWORD_CANARY}@pve:8006/api2/json\"\n{secret_lines}"
        ),
        format!("proxmox:\n  url: \"https://root:{PASSWORD_CANARY}@\"\n{secret_lines}"),
        format!("proxmox:\n  url: \"https://root:a/{PASSWORD_CANARY}@pve:8006\"\n{secret_lines}"),
        format!("proxmox:\n  url: \"https://root:a#{PASSWORD_CANARY}@pve:99999\"\n{secret_lines}"),
        format!("proxmox:\n  url: \"root:{PASSWORD_CANARY}@pve:8006\"\n{secret_lines}"),
        format!(
            "proxmox:\n  url: \"https://pve:8006/api2/json?password={PASSWORD_CANARY}\"\n{secret_lines}"
        ),
        format!(
            "proxmox:\n  url: \"https://pve:8006\"\n  tokenID: \"{TOKEN_CANARY}\"\n  tokenSecret: \"x\"\n"
        ),
        format!(
            "proxmox:\n  url: \"https://pve:8006\"\n  tokenID: \"root@pam!canary\"\n  tokenSecret: [\"{TOKEN_CANARY}\"]\n"
        ),
        format!(
            "proxmox: {{url: \"https://pve:8006\", username: root@pam, password:{PASSWORD_CANARY}}}\n"
        ),
    ];
    for (i, doc) in docs.iter().enumerate() {
        let path = dir.path().join(format!("config-{i}.yaml"));
        std::fs::write(&path, doc).expect("config written");
        let args = RunArgs {
            config: Some(path),
            namespace: Some(ns.clone()),
            concurrency: 4,
            inventory_interval: 1,
            task_poll_interval: 100,
            resync_interval: 0,
            shutdown_grace: 1,
            identity_selector: vec![format!("{}={ns}", crate::tenancy::TEST_LABEL)],
            ..RunArgs::default()
        };
        let run = run_with_client(args, client.clone(), std::future::pending());
        let result = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("config #{i}: the controller started"));
        let error = result.expect_err("a bad config stops the controller");
        let canaries = [PASSWORD_CANARY, TOKEN_CANARY, "root:a"];
        assert_clean(&format!("config #{i}"), &format!("{error:#}"), &canaries);
        assert_clean(&format!("config #{i}"), &format!("{error:?}"), &canaries);
        assert!(
            format!("{error:#}").contains("invalid Proxmox configuration key"),
            "config #{i}: {error:#}"
        );
    }
}

#[tokio::test]
async fn a_refused_token_leaves_no_secret_in_status_or_events() {
    let h = Harness::start_with_config("canary-401", async |sim: &RunningSim| {
        token_config(&sim.url(), sim.fingerprint(), TOKEN_CANARY)
    })
    .await;
    h.apply("vm", spec()).await;
    assert_reported_without(&h, "vm", &[TOKEN_CANARY], "refused the credentials").await;
    h.stop().await;
}

#[tokio::test]
async fn a_refused_password_leaves_no_secret_in_status_or_events() {
    let h = Harness::start_with_config("canary-pw", async |sim: &RunningSim| {
        format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root@pam\n  password: \"{PASSWORD_CANARY}\"\n",
            sim.url(),
            sim.fingerprint()
        )
    })
    .await;
    h.apply("vm", spec()).await;
    assert_reported_without(&h, "vm", &[PASSWORD_CANARY], "refused the credentials").await;
    h.stop().await;
}

#[tokio::test]
async fn an_unreachable_host_or_a_refused_certificate_leaves_no_secret() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let h = Harness::start_with_config("canary-down", async |sim: &RunningSim| {
        token_config(
            &format!("https://127.0.0.1:{closed}/api2/json"),
            sim.fingerprint(),
            TOKEN_CANARY,
        )
    })
    .await;
    h.apply("vm", spec()).await;
    assert_reported_without(&h, "vm", &[TOKEN_CANARY], "transport error").await;
    h.stop().await;

    let wrong_pin = vec!["AB"; 32].join(":");
    let h = Harness::start_with_config("canary-cert", async |sim: &RunningSim| {
        token_config(&sim.url(), &wrong_pin, TOKEN_CANARY)
    })
    .await;
    h.apply("vm", spec()).await;
    assert_reported_without(&h, "vm", &[TOKEN_CANARY], "certificate was refused").await;
    h.stop().await;
}

#[tokio::test]
async fn a_proxmox_error_or_failed_task_quoting_the_secret_is_reported_without_it() {
    let secret = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = secret.clone();
    let h = Harness::start_with_config("canary-500", async move |sim: &RunningSim| {
        let token = root_token(sim);
        *seen.lock().expect("lock") = token.clone();
        // Proxmox quoting the credential back: the create's error and the task's exit status.
        sim.set_faults(FaultConfig {
            seed: 1,
            rules: vec![
                FaultRule {
                    method: Some("POST".into()),
                    path: Some("/nodes/{node}/qemu".into()),
                    rate: 1.0,
                    max_count: Some(1),
                    fault: FaultKind::Error {
                        status: 500,
                        message: format!("storage error (token {token})"),
                    },
                },
                FaultRule {
                    method: Some("POST".into()),
                    path: Some("/nodes/{node}/qemu".into()),
                    rate: 1.0,
                    max_count: None,
                    fault: FaultKind::TaskFailure {
                        message: format!("disk failure: PVEAPIToken=root@pam!canary={token}"),
                    },
                },
            ],
        });
        token_config(&sim.url(), sim.fingerprint(), &token)
    })
    .await;
    let token = secret.lock().expect("lock").clone();
    assert_eq!(token.len(), 36, "the simulator made a token");
    h.apply("vm", spec()).await;
    // The secret was quoted, and replaced: the message shows where it stood.
    assert_reported_without(&h, "vm", &[&token], "PVEAPIToken=root@pam!canary=***").await;
    h.stop().await;
}
