//! Request throughput of pve-client against an embedded pve-sim over loopback HTTPS (pinned
//! fingerprint, keep-alive connections), on one 2-worker tokio runtime shared by the client and
//! the simulator:
//!
//! * `version/one_thread/{token,ticket}`: one `GET /version` at a time with client and simulator
//!   on a single thread (current-thread runtime): the CPU cost per request, without wake-ups;
//! * `version/sequential/{token,ticket}`: one `GET /version` at a time, API token vs. ticket auth;
//! * `version/concurrent/{16,64}`: 16 or 64 `GET /version` in flight at once (token auth; the
//!   client's concurrency bound is raised to match);
//! * `cluster_resources/{100,1000}_vms`: `GET /cluster/resources?type=vm` with 100 and 1000 VMs,
//!   created through the API beforehand; with 1000 VMs also by ticket as root@pam, and without
//!   the typed decode (`execute`, JSON only).
//!
//! `cargo bench -p pve-client --bench throughput`; results are in `docs/pve-client-benchmark.md`.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pve_client::api::cluster::ResourceType;
use pve_client::api::tasks::WaitOptions;
use pve_client::api::vmconfig::{Disk, DiskSlot, Drive, Nic, NicModel, VmConfig};
use pve_client::request::{ApiRequest, Method, Params};
use pve_client::{ClientOptions, PveClient, PveConfig};
use pve_sim::{ClusterConfig, RunningSim, SimOptions, SimServer};

const ROOT_PW: &str = "bench-root-password";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn start_sim() -> RunningSim {
    let mut config = ClusterConfig::default();
    config.task_durations_ms.create = 1;
    let mut opts = SimOptions::new(ROOT_PW);
    opts.config = config;
    SimServer::start(opts).await.expect("simulator starts")
}

fn client(sim: &RunningSim, credentials: &str, max_concurrent: usize) -> PveClient {
    let doc = format!(
        "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n{credentials}",
        sim.url(),
        sim.fingerprint()
    );
    let config = PveConfig::from_yaml_str(&doc).expect("config");
    PveClient::with_options(
        &config,
        ClientOptions {
            max_concurrent_requests: max_concurrent,
            ..ClientOptions::default()
        },
    )
    .expect("client")
}

fn ticket_client(sim: &RunningSim) -> PveClient {
    client(
        sim,
        &format!("  username: root@pam\n  password: \"{ROOT_PW}\"\n"),
        16,
    )
}

/// Creates an API token for root@pam (no privilege separation) through the API and returns the
/// `tokenID`/`tokenSecret` lines of a `proxmox:` section.
async fn token_credentials(sim: &RunningSim) -> String {
    let root = ticket_client(sim);
    let mut p = Params::new();
    p.str("privsep", "0");
    let resp = root
        .execute(&ApiRequest::new(
            Method::Post,
            "/access/users/{userid}/token/{tokenid}",
            &[("userid", "root@pam"), ("tokenid", "bench")],
            p,
        ))
        .await
        .expect("token create");
    let secret = resp.data["value"].as_str().expect("token secret");
    format!("  tokenID: \"root@pam!bench\"\n  tokenSecret: \"{secret}\"\n")
}

/// Creates VMs `first..first+count` through the API, 32 at a time, and waits for their tasks.
async fn create_vms(client: &PveClient, first: u32, count: u32) {
    let wait = WaitOptions {
        initial_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(50),
        ..WaitOptions::default()
    };
    let ids: Vec<u32> = (first..first + count).collect();
    for chunk in ids.chunks(32) {
        let creates = chunk.iter().map(|&vmid| {
            let wait = &wait;
            async move {
                let vm = VmConfig {
                    name: Some(format!("bench-{vmid}")),
                    cores: Some(1),
                    memory_mib: Some(512),
                    tags: vec!["pve-operator".into()],
                    ..VmConfig::default()
                }
                .drive(
                    DiskSlot::scsi(0).expect("scsi0"),
                    Drive::Disk(Disk::new("local-lvm", 1.0)),
                )
                .nic(0, Nic::new(NicModel::Virtio, "vmbr0"));
                let upid = client
                    .qemu_create("pve", vmid, &vm, false)
                    .await
                    .expect("create");
                client.wait_task(&upid, wait).await.expect("create task");
            }
        });
        futures::future::join_all(creates).await;
    }
}

/// A simulator, the secret of a token on it, a token client (16 concurrent requests) and a
/// ticket client that has logged in.
async fn sim_and_clients() -> (RunningSim, String, PveClient, PveClient) {
    let sim = start_sim().await;
    let token_creds = token_credentials(&sim).await;
    let token = client(&sim, &token_creds, 16);
    let ticket = ticket_client(&sim);
    ticket.version().await.expect("ticket login");
    (sim, token_creds, token, ticket)
}

/// One `GET /version` at a time with each named client, in the benchmark group `group`.
fn bench_version(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    clients: [(&str, &PveClient); 2],
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for (name, client) in clients {
        g.bench_function(name, |b| {
            b.to_async(rt)
                .iter(|| async { client.version().await.expect("GET /version") });
        });
    }
    g.finish();
}

/// Client and simulator on ONE thread (a current-thread runtime): no thread wake-ups in the
/// measurement, so this is the CPU cost of a request, client and server together.
fn one_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (sim, _, token, ticket) = rt.block_on(sim_and_clients());
    bench_version(
        c,
        &rt,
        "version/one_thread",
        [("token", &token), ("ticket", &ticket)],
    );
    drop(token);
    drop(ticket);
    rt.block_on(sim.shutdown());
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let (sim, token_creds, token, ticket) = rt.block_on(sim_and_clients());
    bench_version(
        c,
        &rt,
        "version/sequential",
        [("token", &token), ("ticket", &ticket)],
    );

    let mut g = c.benchmark_group("version/concurrent");
    for n in [16usize, 64] {
        let wide = client(&sim, &token_creds, n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter(|| async {
                let calls = (0..n).map(|_| wide.version());
                for r in futures::future::join_all(calls).await {
                    r.expect("GET /version");
                }
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cluster_resources");
    g.throughput(Throughput::Elements(1));
    let mut created = 0u32;
    for vms in [100u32, 1000] {
        rt.block_on(create_vms(&token, 100 + created, vms - created));
        created = vms;
        let listed = rt
            .block_on(token.cluster_resources(Some(ResourceType::Vm)))
            .expect("resources");
        assert_eq!(listed.len(), vms as usize + 1, "{vms} VMs and the template");
        g.bench_with_input(BenchmarkId::new("vms", vms), &vms, |b, _| {
            b.to_async(&rt).iter(|| async {
                token
                    .cluster_resources(Some(ResourceType::Vm))
                    .await
                    .expect("GET /cluster/resources")
            });
        });
    }
    // Where the time goes with 1000 VMs: root@pam by ticket (the simulator skips privilege
    // evaluation for root@pam, not for tokens), and the token without the typed decode.
    g.bench_function("vms/1000/ticket", |b| {
        b.to_async(&rt).iter(|| async {
            ticket
                .cluster_resources(Some(ResourceType::Vm))
                .await
                .expect("GET /cluster/resources")
        });
    });
    let untyped = pve_client::api::cluster::resources_request(Some(ResourceType::Vm));
    g.bench_function("vms/1000/untyped", |b| {
        b.to_async(&rt).iter(|| async {
            token
                .execute(&untyped)
                .await
                .expect("GET /cluster/resources")
        });
    });
    g.finish();
    drop(token);
    drop(ticket);
    rt.block_on(sim.shutdown());
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = throughput;
    config = config();
    targets = one_thread, benches
}
criterion_main!(throughput);
