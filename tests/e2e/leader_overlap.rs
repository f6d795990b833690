//! The leader-overlap bound (docs/security.md, "Leader overlap"): a leader that can no longer
//! renew its Lease stops all work before a standby may take over, even when the renewal call
//! itself hangs. Two controller instances with leader election share one kube-apiserver and one
//! pve-sim, each with its own Proxmox token, so that the simulator's request log tells their
//! calls apart and orders them.

use std::net::SocketAddr;
use std::path::Path;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client, ResourceExt};
use pve_operator::cli::run::{RunCommand, run_operator};
use pve_operator_api::{HasConditions, MachineRequest};
use pve_sim::requests::RequestRecord;
use pve_sim::{RunningSim, SimOptions, SimServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{
    init_logging, machine_request, server_apply, shared_namespace, small_spec, wait_for, within,
};

const LEASE: &str = "pve-operator-leader";

/// A TCP relay in front of the API server that can be made to hold every byte, in both
/// directions and on connections already open: a network partition between one controller and
/// the API server, under which its calls (the Lease renewal included) hang instead of failing.
struct Partition {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Partition {
    async fn in_front_of(target: SocketAddr) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay port");
        let addr = listener.local_addr().expect("relay address");
        let (cut, is_cut) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let is_cut = is_cut.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::join!(
                        relay(from_client, to_server, is_cut.clone()),
                        relay(from_server, to_client, is_cut),
                    );
                });
            }
        });
        Partition { addr, cut }
    }

    /// From now on, nothing passes (and nothing fails either: every call just waits).
    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut is_cut: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if is_cut.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if is_cut.wait_for(|cut| !*cut).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A `proxmox:` config for `root@pam!<token>` (a token without privilege separation, so with
/// root's rights), written to `dir`.
fn token_config(sim: &RunningSim, dir: &Path, token: &str) -> std::path::PathBuf {
    let secret = sim
        .with_state(|state| {
            state
                .access
                .token_add("root@pam", token, Some(false), None, None)
        })
        .expect("token created");
    let path = dir.join(format!("{token}.yaml"));
    let text = format!(
        "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  tokenID: \"root@pam!{token}\"\n  tokenSecret: \"{secret}\"\n",
        sim.url(),
        sim.fingerprint()
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// `pve-operator run` for one instance, as its command line would say.
fn run_command(ns: &str, config: &Path, identity: &str) -> RunCommand {
    let argv = [
        "pve-operator".to_string(),
        "run".into(),
        format!("--config={}", config.display()),
        format!("--namespace={ns}"),
        // Identities are cluster-scoped and tests share the control plane: serve only this
        // test's (it has none).
        format!("--identity-namespace={ns}"),
        format!("--identity-selector={}={ns}", crate::tenancy::TEST_LABEL),
        "--leader-elect".into(),
        format!("--lease-namespace={ns}"),
        format!("--leader-identity={identity}"),
        "--lease-duration=4".into(),
        "--lease-renew-interval=1".into(),
        "--inventory-interval=1".into(),
        "--task-poll-interval=100".into(),
        "--resync-interval=0".into(),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    let cli = <pve_operator::cli::Cli as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    match cli.command {
        pve_operator::cli::Command::Run(command) => *command,
        _ => unreachable!("the run command"),
    }
}

/// Starts one instance in this process; its task ends when the run does.
async fn start(command: RunCommand, client: Client) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    tokio::spawn(run_operator(
        command,
        client,
        listener,
        std::future::pending::<()>(),
    ))
}

async fn lease(leases: &Api<Lease>) -> Option<(String, i32)> {
    let spec = leases.get_opt(LEASE).await.expect("lease readable")?.spec?;
    Some((spec.holder_identity?, spec.lease_transitions.unwrap_or(0)))
}

async fn until_held_by(leases: &Api<Lease>, identity: &str) -> i32 {
    within(&format!("{identity} to hold the Lease"), async {
        loop {
            if let Some((holder, transitions)) = lease(leases).await
                && holder == identity
            {
                return transitions;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
}

fn by(records: &[RequestRecord], caller: &str) -> Vec<RequestRecord> {
    records
        .iter()
        .filter(|r| r.caller == caller)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_sends_nothing_once_a_standby_has_taken_over() {
    init_logging();
    let (env, admin, ns) = shared_namespace("leader-overlap").await;
    let mut options = SimOptions::new("overlap-root-password");
    // The VM's create task outlasts the whole handover: the old leader's task tracker polls it
    // and its inventory reads Proxmox all along, for as long as that leader works.
    options.config.task_durations_ms.create = 8_000;
    let sim = SimServer::start(options).await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_a = token_config(&sim, dir.path(), "instance-a");
    let config_b = token_config(&sim, dir.path(), "instance-b");
    let (caller_a, caller_b) = ("root@pam!instance-a", "root@pam!instance-b");

    // Instance a reaches the API server through a relay that the test can cut.
    let server: SocketAddr = env
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .expect("the API server's address");
    let partition = Partition::in_front_of(server).await;
    let mut config = env.config().clone();
    config.cluster_url = format!("https://{}", partition.addr)
        .parse()
        .expect("relay URL");
    let client_a = Client::try_from(config).expect("client through the relay");

    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let a = start(run_command(&ns, &config_a, "instance-a"), client_a).await;
    let transitions_a = until_held_by(&leases, "instance-a").await;
    let b = start(
        run_command(&ns, &config_b, "instance-b"),
        env.client().expect("client"),
    )
    .await;

    // The leader has work in flight: a create task it started and tracks.
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &ns);
    let request = machine_request("contested", small_spec());
    let apply = kube::api::PatchParams::apply("e2e-tests");
    server_apply(&requests, &apply, "contested", &request)
        .await
        .expect("MachineRequest applies");
    wait_for(
        &requests,
        "contested",
        "instance-a to start the create task",
        |r| r.status.as_ref().is_some_and(|s| s.current_task.is_some()),
    )
    .await;
    assert!(
        sim.requests().iter().all(|r| r.caller != caller_b),
        "a standby sends nothing to Proxmox"
    );

    // Instance a is cut off from the API server: its renewals hang, they do not fail.
    partition.cut();
    let stopped = within("instance-a to stop leading on its own", a)
        .await
        .expect("no panic");
    let error = stopped.expect_err("losing the Lease ends the run with an error");
    assert!(error.to_string().contains("leadership lost"), "{error:#}");
    let transitions_b = until_held_by(&leases, "instance-b").await;
    assert!(transitions_b > transitions_a, "the Lease changed hands");

    // Instance b finishes the request and works for a few inventory intervals more.
    wait_for(
        &requests,
        "contested",
        "instance-b to make the request Ready",
        |r| r.status.as_ref().is_some_and(|s| s.is_ready()),
    )
    .await;
    within("instance-b to read the inventory a few times", async {
        while by(&sim.requests(), caller_b)
            .iter()
            .filter(|r| r.endpoint == "GET /cluster/resources")
            .count()
            < 3
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;

    let records = sim.requests();
    let from_a = by(&records, caller_a);
    let from_b = by(&records, caller_b);
    let last_a = from_a.last().expect("instance-a worked while it led");
    let first_b = from_b.first().expect("instance-b works now");
    assert!(
        from_a
            .iter()
            .any(|r| r.endpoint == "POST /nodes/{node}/qemu"),
        "instance-a sent the create"
    );
    assert!(
        last_a.seq < first_b.seq,
        "no Proxmox request of the old leader arrives after the new leader's first: the old one's last was {last_a:?}, the new one's first {first_b:?}; after it the old one sent {:?}",
        from_a
            .iter()
            .filter(|r| r.seq > first_b.seq)
            .collect::<Vec<_>>()
    );
    assert!(
        last_a.at_ms <= first_b.at_ms,
        "and by the simulator's clock: {last_a:?} vs {first_b:?}"
    );
    let uid = requests
        .get("contested")
        .await
        .expect("request")
        .uid()
        .expect("uid");
    let marked = sim.with_state(|state| {
        state
            .vms
            .values()
            .filter(|vm| vm.conf.get("tags").is_some_and(|t| t.contains(&uid)))
            .count()
    });
    assert_eq!(marked, 1, "one VM for the request");

    b.abort();
    let _ = b.await;
    sim.shutdown().await;
}
