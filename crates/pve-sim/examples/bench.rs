//! Load benchmark of the simulator (not a test): creates many VMs through the API, then measures
//! request throughput of cheap and expensive reads with concurrent keep-alive HTTPS clients.
//!
//! `cargo run --release -p pve-sim --example bench -- [VMS] [SECONDS] [CONCURRENCY]`
//! (defaults 2000, 5, 32). Traffic goes only to the simulator on 127.0.0.1, bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pve_sim::{SimOptions, SimServer};
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let vms = args.first().copied().unwrap_or(2000);
    let seconds = args.get(1).copied().unwrap_or(5);
    let concurrency = args.get(2).copied().unwrap_or(32);

    let mut opts = SimOptions::new("bench");
    opts.config.task_durations_ms.create = 300;
    let sim = SimServer::start(opts).await?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes())?)
        .pool_max_idle_per_host(concurrency as usize)
        .build()?;
    let login: Value = client
        .post(format!("{}/access/ticket", sim.url()))
        .form(&[("username", "root@pam"), ("password", "bench")])
        .send()
        .await?
        .json()
        .await?;
    let ticket = login["data"]["ticket"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let csrf = login["data"]["CSRFPreventionToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cookie = format!("PVEAuthCookie={ticket}");

    // Create VMs with `concurrency` creators in flight.
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut creators = Vec::new();
    for _ in 0..concurrency {
        let (client, url, cookie, csrf, next) = (
            client.clone(),
            sim.url(),
            cookie.clone(),
            csrf.clone(),
            next.clone(),
        );
        creators.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= vms {
                    break;
                }
                let vmid = (1000 + i).to_string();
                let resp = client
                    .post(format!("{url}/nodes/pve/qemu"))
                    .header("Cookie", &cookie)
                    .header("CSRFPreventionToken", &csrf)
                    .form(&[
                        ("vmid", vmid.as_str()),
                        ("memory", "2048"),
                        ("net0", "virtio,bridge=vmbr0"),
                        ("scsi0", "local-lvm:1"),
                    ])
                    .send()
                    .await;
                if !resp.is_ok_and(|r| r.status().is_success()) {
                    eprintln!("create {vmid} failed");
                }
            }
        }));
    }
    for c in creators {
        c.await?;
    }
    let create_secs = started.elapsed().as_secs_f64();
    println!(
        "created {vms} VMs (create requests) in {create_secs:.2} s = {:.0} creates/s",
        vms as f64 / create_secs
    );

    // A token of an ordinary user (PVEAuditor on /, privsep=0), as a controller would use.
    let form_post = |path: &str, form: Vec<(&'static str, String)>| {
        client
            .request(reqwest::Method::POST, format!("{}{path}", sim.url()))
            .header("Cookie", &cookie)
            .header("CSRFPreventionToken", &csrf)
            .form(&form)
    };
    form_post(
        "/access/users",
        vec![
            ("userid", "bench@pve".into()),
            ("password", "benchbench".into()),
        ],
    )
    .send()
    .await?;
    client
        .put(format!("{}/access/acl", sim.url()))
        .header("Cookie", &cookie)
        .header("CSRFPreventionToken", &csrf)
        .form(&[
            ("path", "/"),
            ("roles", "PVEAuditor"),
            ("users", "bench@pve"),
        ])
        .send()
        .await?;
    let token: Value = form_post(
        "/access/users/bench@pve/token/bench",
        vec![("privsep", "0".into())],
    )
    .send()
    .await?
    .json()
    .await?;
    let token_header = format!(
        "PVEAPIToken=bench@pve!bench={}",
        token["data"]["value"].as_str().unwrap_or_default()
    );

    for (label, path, auth) in [
        (
            "GET status/current",
            "/nodes/pve/qemu/1000/status/current".to_string(),
            ("Cookie", cookie.clone()),
        ),
        (
            "GET version",
            "/version".to_string(),
            ("Cookie", cookie.clone()),
        ),
        (
            "GET cluster/resources (all VMs)",
            "/cluster/resources?type=vm".to_string(),
            ("Cookie", cookie.clone()),
        ),
        (
            "GET status/current (auditor token)",
            "/nodes/pve/qemu/1000/status/current".to_string(),
            ("Authorization", token_header.clone()),
        ),
        (
            "GET cluster/resources (all VMs, auditor token)",
            "/cluster/resources?type=vm".to_string(),
            ("Authorization", token_header.clone()),
        ),
    ] {
        let count = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (client, url, auth, count, errors) = (
                client.clone(),
                format!("{}{path}", sim.url()),
                auth.clone(),
                count.clone(),
                errors.clone(),
            );
            workers.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match client.get(&url).header(auth.0, &auth.1).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let n = count.load(Ordering::Relaxed);
        println!(
            "{label}: {n} requests in {seconds} s = {:.0} req/s ({} errors, {concurrency} concurrent)",
            n as f64 / seconds as f64,
            errors.load(Ordering::Relaxed)
        );
    }
    // Many tasks in flight: start every VM with realistic (seconds-long) task durations, then
    // read while they run.
    sim.with_state(|s| s.config.task_durations_ms = pve_sim::config::TaskDurations::realistic());
    let started = Instant::now();
    for i in 0..vms {
        let resp = client
            .post(format!(
                "{}/nodes/pve/qemu/{}/status/start",
                sim.url(),
                1000 + i
            ))
            .header("Cookie", &cookie)
            .header("CSRFPreventionToken", &csrf)
            .send()
            .await?;
        let _ = resp.bytes().await;
    }
    let in_flight = sim.with_state(|s| s.tasks_in_flight());
    println!(
        "started {vms} start tasks in {:.2} s; {in_flight} tasks in flight",
        started.elapsed().as_secs_f64()
    );
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, cookie, count) = (
            client.clone(),
            format!("{}/nodes/pve/qemu/1000/status/current", sim.url()),
            cookie.clone(),
            count.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Ok(r) = client.get(&url).header("Cookie", &cookie).send().await {
                    let _ = r.bytes().await;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    println!(
        "GET status/current with {in_flight} tasks in flight: {} req/s",
        count.load(Ordering::Relaxed)
    );
    let stats: Value = client
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "simulator: {} VMs, {} tasks started, {} in flight",
        stats["vms"], stats["tasks_started"], stats["tasks_in_flight"]
    );
    sim.shutdown().await;
    Ok(())
}
