//! `pve-operator run` as the process that the Helm chart starts: JSON logs without secrets,
//! the operations endpoints (with Proxmox requests counted through the real log subscriber),
//! leader election, a MachineRequest to Ready, and a SIGTERM that ends in exit code 0 with the
//! Lease released.
#![cfg(feature = "demo")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use pve_operator_api::{HasConditions, MachineRequest};
use serde_json::{Value, json};

/// Fails the test after 60 s instead of hanging it.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after 60s waiting for {what}"))
}

/// GET `path` on `addr`: status code and body.
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Kills the process when the test fails before stopping it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_metrics_leads_reconciles_and_stops_cleanly_on_sigterm_without_logging_secrets()
 {
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    testenv::install_committed_crds(&client, "run-binary-test").await;
    let ns = env
        .create_namespace(&client, "run-binary")
        .await
        .expect("namespace");
    let sim = pve_sim::SimServer::start(pve_sim::SimOptions::new("binary-root-secret-pw"))
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("proxmox.yaml");
    std::fs::write(&config, sim.root_config_yaml()).expect("config written");

    let mut child = Command::new(env!("CARGO_BIN_EXE_pve-operator"))
        .args(["run", "--kubeconfig"])
        .arg(env.kubeconfig_path())
        .arg("--config")
        .arg(&config)
        .args([
            "--namespace",
            &ns,
            "--leader-elect",
            "--lease-namespace",
            &ns,
            "--leader-identity",
            "binary",
            "--metrics-addr",
            "127.0.0.1:0",
            "--inventory-interval",
            "1",
            "--task-poll-interval",
            "100",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let process = Process(child);
    // Every log line, as it comes.
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the binary logs where it serves");
        let parsed: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        log.push(line);
        if parsed["fields"]["message"] == "serving /metrics, /healthz and /readyz" {
            break parsed["fields"]["addr"].as_str().expect("addr").to_string();
        }
    };
    within("/readyz to answer 200", async {
        while get(&addr, "/readyz").await.map(|r| r.0) != Some(200) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let requests: Api<MachineRequest> = Api::namespaced(client.clone(), &ns);
    let request = json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "MachineRequest",
        "metadata": { "name": "from-binary" },
        "spec": {
            "cpu": { "cores": 1 },
            "memory": { "sizeMiB": 512 },
            "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 4 }],
            "networks": [{ "name": "net0", "bridge": "vmbr0" }],
            "boot": { "iso": { "volume": "local:iso/debian-12.7.0-amd64-netinst.iso" } },
        },
    });
    requests
        .patch(
            "from-binary",
            &PatchParams::apply("run-binary-test").force(),
            &Patch::Apply(&request),
        )
        .await
        .expect("request applies");
    within(
        "the request to become Ready",
        await_condition(
            requests.clone(),
            "from-binary",
            |o: Option<&MachineRequest>| {
                o.and_then(|o| o.status.as_ref())
                    .is_some_and(|s| s.is_ready())
            },
        ),
    )
    .await
    .expect("watch");

    let (code, metrics) = get(&addr, "/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200);
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics text");
    // Counted through the binary's own log subscriber (the pve_request spans of pve-client).
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "pve_operator_proxmox_requests_total{method=\"POST\",endpoint=\"/nodes/{node}/qemu\",status=\"200\"}"
        )),
        "the VM create call is counted:\n{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "pve_operator_reconciles_total{controller=\"machinerequest\",outcome=\"success\"}"
        )),
        "reconciles are counted:\n{metrics}"
    );

    // SIGTERM: in-flight work finishes, the Lease is released, exit code 0.
    let pid = process.0.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut process = process;
    let exit = within("the binary to exit after SIGTERM", async {
        loop {
            if let Some(status) = process.0.try_wait().expect("wait") {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(exit.success(), "exit after SIGTERM: {exit}");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = leases
        .get("pve-operator-leader")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder, None, "SIGTERM releases the Lease");

    // The process has exited: its stderr is closed, and the reader thread ends.
    log.extend(lines.iter());
    assert!(log.len() > 10, "debug logs were written");
    for line in &log {
        assert!(
            !line.contains(sim.root_password()),
            "a log line carries the Proxmox password (line withheld)"
        );
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    sim.shutdown().await;
}
