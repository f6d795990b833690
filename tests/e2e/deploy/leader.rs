//! Leader election between controller instances: only the leader reconciles; a standby takes
//! over a released Lease within the lease time and an expired one only once it expired, with
//! no duplicate VM; a leader whose Lease is taken stops its controllers and exits with an error.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use pve_operator_api::MachineRequest;

use super::instance::{Instance, InstanceOptions, Metrics, Proxmox, lease_holder};
use super::{apply_request, until, wait_ready};
use crate::support::{init_logging, shared_namespace, within};

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_within_the_lease_time_without_duplicates()
 {
    init_logging();
    let (env, admin, ns) = shared_namespace("leader").await;
    let proxmox = Proxmox::start().await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let requests: Api<MachineRequest> = Api::namespaced(admin.clone(), &ns);
    let lease_duration = 4;
    let options = |identity| InstanceOptions {
        ns: &ns,
        config: &proxmox.config,
        leader_elect: true,
        identity,
        lease_duration,
    };

    let a = Instance::start(env.client().expect("client"), options("instance-a")).await;
    until("instance-a to lead", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-a")
    })
    .await;
    let b = Instance::start(env.client().expect("client"), options("instance-b")).await;
    until("instance-b to stand by (ready as a standby)", || async {
        let (code, body) = b.get("/readyz").await;
        code == 200 && body.contains("standby")
    })
    .await;

    apply_request(&requests, "first").await;
    wait_ready(&requests, "first").await;
    let count = |m: Metrics| {
        m.sum(
            "pve_operator_reconciles_total",
            &[("controller", "machinerequest")],
        )
    };
    assert!(count(a.metrics().await) > 0.0, "the leader reconciled");
    assert_eq!(
        count(b.metrics().await),
        0.0,
        "the standby reconciled nothing"
    );
    assert_eq!(lease_holder(&leases).await.as_deref(), Some("instance-a"));

    // A graceful stop releases the Lease: the standby takes over at its next attempt.
    let stopped = Instant::now();
    a.stop().await.expect("a clean stop");
    until("instance-b to lead after instance-a stopped", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-b")
    })
    .await;
    let handover = stopped.elapsed();
    assert!(
        handover < Duration::from_secs(lease_duration),
        "a released Lease is taken over within the lease time, took {handover:?}"
    );
    apply_request(&requests, "second").await;
    wait_ready(&requests, "second").await;
    assert!(count(b.metrics().await) > 0.0, "the new leader reconciles");

    // A crash releases nothing: a new standby takes over once the Lease expires.
    let c = Instance::start(env.client().expect("client"), options("instance-c")).await;
    until("instance-c to stand by", || async {
        c.get("/readyz").await.1.contains("standby")
    })
    .await;
    let crashed = Instant::now();
    b.crash().await;
    until("instance-c to lead after instance-b crashed", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-c")
    })
    .await;
    let takeover = crashed.elapsed();
    // The lease time, counted from when the standby first sees the silent leader's last record
    // (up to one retry interval, 1 s, after the crash), then up to one retry interval until its
    // next attempt, plus 1 s for a loaded machine.
    assert!(
        takeover < Duration::from_secs(lease_duration + 3),
        "an expired Lease is taken over within the lease time, took {takeover:?}"
    );
    assert!(
        takeover >= Duration::from_secs(lease_duration) - Duration::from_secs(1),
        "a Lease held by a silent leader is not taken before it expires (took {takeover:?})"
    );
    apply_request(&requests, "third").await;
    wait_ready(&requests, "third").await;

    // Nothing duplicated: one VM per request, distinct VMIDs.
    let mut vmids: Vec<u32> = Vec::new();
    for name in ["first", "second", "third"] {
        let request = requests.get(name).await.expect("request");
        vmids.push(request.status.and_then(|s| s.vmid).expect("vmid"));
    }
    vmids.sort_unstable();
    vmids.dedup();
    assert_eq!(vmids.len(), 3, "distinct VMs");
    let vms = proxmox.vms().await;
    assert_eq!(vms.len(), 3, "exactly one VM per request: {vms:?}");

    c.stop().await.expect("a clean stop");
    proxmox.sim.shutdown().await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_its_controllers_and_exits_with_an_error() {
    init_logging();
    let (env, admin, ns) = shared_namespace("lease-lost").await;
    let proxmox = Proxmox::start().await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let mut instance = Instance::start(
        env.client().expect("client"),
        InstanceOptions {
            ns: &ns,
            config: &proxmox.config,
            leader_elect: true,
            identity: "instance-a",
            lease_duration: 4,
        },
    )
    .await;
    until("instance-a to lead", || async {
        lease_holder(&leases).await.as_deref() == Some("instance-a")
    })
    .await;
    // Another writer takes the Lease (as a replica would after a network partition).
    let mut lease = leases.get("pve-operator-leader").await.expect("lease");
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        ));
    }
    leases
        .replace("pve-operator-leader", &PostParams::default(), &lease)
        .await
        .expect("lease taken");
    let task = instance.task.take().expect("running");
    let result = within("the former leader to stop", task)
        .await
        .expect("no panic");
    let error = result.expect_err("losing the Lease ends the run with an error");
    assert!(
        error.to_string().contains("leadership lost"),
        "unexpected error: {error:#}"
    );
    assert_eq!(
        lease_holder(&leases).await.as_deref(),
        Some("intruder"),
        "a leader that lost the Lease does not release (overwrite) the new holder's Lease"
    );
    proxmox.sim.shutdown().await;
}
