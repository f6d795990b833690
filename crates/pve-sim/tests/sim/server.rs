//! The server itself: the HTTPS certificate (signed by the simulator's CA, matching the
//! fingerprint it reports), the `pve-sim` binary serving a YAML config, and the server stopping
//! when the embedded simulator is dropped.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, fast_config, http_client, start, start_with};

#[tokio::test]
async fn https_certificate_is_signed_by_the_ca_and_matches_the_fingerprint() {
    let sim = start().await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    assert!(sim.url().ends_with("/api2/json"));
    let resp = http_client(&sim)
        .get(format!("{}/version", sim.url()))
        .send()
        .await
        .expect("TLS verified against the CA");
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().cloned();
    let der = info
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .unwrap_or_default();
    assert_eq!(pve_sim::tls::fingerprint_of(&der), sim.fingerprint());
    let fp = sim.fingerprint();
    assert_eq!(fp.len(), 95);
    assert!(
        fp.chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    let nodes = Api::root(&sim).await.get("/nodes").await;
    assert_eq!(nodes[0]["ssl_fingerprint"], json!(fp));
}

#[tokio::test]
async fn the_binary_serves_with_a_yaml_config_and_prints_url_and_fingerprint() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        "pve_version: '8.4'\nversion: {version: 8.4.9, release: '8.4', repoid: 0123456789abcdef}\n",
    )
    .expect("config written");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pve-sim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root-password",
            "pw",
            "--config",
        ])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut url = String::new();
    let mut fingerprint = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(u) = line.strip_prefix("pve-sim listening on ") {
            url = u.to_string();
        }
        if let Some(f) = line.strip_prefix("fingerprint: ") {
            fingerprint = f.to_string();
            break;
        }
    }
    assert!(
        url.starts_with("https://127.0.0.1:") && url.ends_with("/api2/json"),
        "{url}"
    );
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let login: Value = client
        .post(format!("{url}/access/ticket"))
        .form(&[("username", "root@pam"), ("password", "pw")])
        .send()
        .await
        .expect("login answered")
        .json()
        .await
        .expect("json");
    let ticket = login["data"]["ticket"].as_str().unwrap_or_default();
    let version: Value = client
        .get(format!("{url}/version"))
        .header("Cookie", format!("PVEAuthCookie={ticket}"))
        .send()
        .await
        .expect("version answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        version["data"]["version"], "8.4.9",
        "the YAML config is used"
    );
    child.kill().await.expect("killed");
}

#[tokio::test]
async fn dropping_the_simulator_stops_the_server() {
    let sim = start_with(fast_config(), true).await;
    let addr = sim.addr();
    drop(sim);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server still accepts connections after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
