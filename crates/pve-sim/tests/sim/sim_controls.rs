//! The simulator's own controls under `/_sim/`: injected faults (proxy errors, lock timeouts,
//! task failures, dropped connections, latency before and after the work), seeded error rates,
//! request and task statistics, state persisted across restarts, and reset.

use std::time::Duration;

use pve_sim::{SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, Auth, ROOT_PW, create_vm_ok, fast_config, http_client, sim_get, sim_put, start_root,
};

#[tokio::test]
async fn faults_inject_proxy_errors_lock_timeouts_task_failures_and_drops() {
    let (sim, api) = start_root().await;
    create_vm_ok(&api, "140", &[]).await;
    let faults = json!({"seed": 1, "rules": [
        {"method": "GET", "path": "/version", "max_count": 1, "fault": {"kind": "proxy", "status": 596, "reason": "Connection timed out"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}},
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/status/start", "max_count": 1, "fault": {"kind": "task_failure", "message": "injected start failure"}},
        {"method": "GET", "path": "/cluster/status", "max_count": 1, "fault": {"kind": "drop"}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let (code, body) = api.call(Method::GET, "/version", &[]).await;
    assert_eq!((code, body), (596, Value::Null));
    // max_count limits the fault.
    api.expect(Method::GET, "/version", &[], 200).await;
    let cores = [("cores", "3")];
    api.expect_lock_timeout(Method::PUT, "/nodes/pve/qemu/140/config", &cores, "140")
        .await;
    let exit = api.vm_action("140", "start").await;
    assert_eq!(exit, "injected start failure");
    let url = format!("{}/cluster/status", sim.url());
    let ticket = api.ticket();
    let dropped = api
        .http
        .get(&url)
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection is dropped without an answer"
    );
    let fired = sim_get(&sim, "/_sim/faults").await;
    assert_eq!(fired["fired"], json!([1, 1, 1, 1]));
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(stats["faults_injected"], json!(4));
    assert_eq!(stats["responses_by_status"]["596"], json!(1));
}

#[tokio::test]
async fn latency_before_holds_the_request_back_and_latency_after_does_the_work_then_holds_the_answer()
 {
    let (sim, api) = start_root().await;
    let faults = json!({"seed": 1, "rules": [
        {"method": "POST", "path": "/nodes/{node}/qemu", "fault": {"kind": "latency", "ms": 400}},
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/status/start", "fault": {"kind": "latency_after", "ms": 400}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let impatient = |api: &Api, path: &str, params: &[(&str, &str)]| {
        let Auth::Ticket { ticket, csrf } = &api.auth else {
            panic!("ticket auth expected");
        };
        api.http
            .post(format!("{}{path}", api.base))
            .header("Cookie", format!("PVEAuthCookie={ticket}"))
            .header("CSRFPreventionToken", csrf)
            .form(params)
            .timeout(Duration::from_millis(100))
            .send()
    };
    // Given up on while held back: not carried out.
    let gave_up = impatient(
        &api,
        "/nodes/pve/qemu",
        &[("vmid", "160"), ("memory", "512")],
    )
    .await;
    assert!(gave_up.is_err(), "no answer within 100 ms: {gave_up:?}");
    // A patient create, sent later and held back as long, is done only after the first one's
    // 400 ms have passed.
    create_vm_ok(&api, "162", &[]).await;
    assert!(
        !sim.with_state(|s| s.vms.contains_key(&160)),
        "a create given up on before it was carried out makes no VM"
    );
    // Given up on while its answer is held back: carried out all the same.
    create_vm_ok(&api, "161", &[]).await;
    let gave_up = impatient(&api, "/nodes/pve/qemu/161/status/start", &[]).await;
    assert!(gave_up.is_err(), "no answer within 100 ms: {gave_up:?}");
    let started = sim.with_state(|s| s.tasks.iter().any(|t| t.kind == "qmstart" && t.id == "161"));
    assert!(
        started,
        "the start task runs although its UPID never reached the client"
    );
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(stats["faults_injected"], json!(4), "{stats}");
}

#[tokio::test]
async fn seeded_error_rate_is_repeatable() {
    async fn run(seed: u64) -> Vec<u16> {
        let (sim, api) = start_root().await;
        let faults = json!({"seed": seed, "rules": [
            {"path": "/version", "rate": 0.5, "fault": {"kind": "error", "status": 503, "message": "busy"}}
        ]});
        assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
        let mut codes = Vec::new();
        for _ in 0..40 {
            codes.push(api.call(Method::GET, "/version", &[]).await.0);
        }
        codes
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    let errors = a.iter().filter(|c| **c == 503).count();
    assert!((5..35).contains(&errors), "{errors} of 40 failed");
}

#[tokio::test]
async fn stats_count_requests_per_endpoint_and_caller_and_tasks() {
    let (sim, api) = start_root().await;
    create_vm_ok(&api, "150", &[]).await;
    api.get("/nodes/pve/qemu/150/config").await;
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(
        stats["requests_by_endpoint"]["POST /nodes/{node}/qemu"],
        json!(1)
    );
    assert_eq!(
        stats["requests_by_endpoint"]["GET /nodes/{node}/qemu/{vmid}/config"],
        json!(1)
    );
    assert!(
        stats["requests_by_caller"]["root@pam"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    );
    assert_eq!(stats["tasks_started"], json!(1));
    assert_eq!(stats["tasks_by_type"]["qmcreate"], json!(1));
    assert_eq!(stats["tasks_in_flight"], json!(0));
    assert_eq!(
        sim.stats().tasks_started,
        1,
        "the embedding API sees the same counters"
    );
}

#[tokio::test]
async fn state_persists_across_restarts_and_reset_returns_to_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let mut opts = SimOptions::new(ROOT_PW);
    opts.config = fast_config();
    opts.state_file = Some(path.clone());
    let sim = SimServer::start(opts.clone()).await.expect("starts");
    let fingerprint = sim.fingerprint().to_string();
    let api = Api::root(&sim).await;
    create_vm_ok(&api, "160", &[]).await;
    sim.shutdown().await;
    assert!(path.is_file(), "state written");

    let sim = SimServer::start(opts).await.expect("restarts");
    assert_eq!(
        sim.fingerprint(),
        fingerprint,
        "the certificate survives a restart"
    );
    let api = Api {
        base: sim.url(),
        http: http_client(&sim),
        ..api
    };
    let conf = api.get("/nodes/pve/qemu/160/config").await;
    assert_eq!(
        conf["name"], "web-1",
        "the VM and the old ticket survive a restart"
    );
    let dump = sim_get(&sim, "/_sim/state").await;
    assert!(dump["vms"]["160"].is_object());
    assert!(dump.get("keys").is_none(), "secrets are not dumped");
    let reset = http_client(&sim)
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status().as_u16(), 200);
    // Reset returns to the start state.
    api.expect(Method::GET, "/nodes/pve/qemu/160/config", &[], 500)
        .await;
}
