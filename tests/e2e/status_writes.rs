//! Status writes with optimistic concurrency, against the real kube-apiserver: a writer that
//! works from an old copy of a MachineRequest (an old leader, a lagging cache) is refused and
//! cannot erase the VMID a newer writer recorded.

use kube::Api;
use kube::api::PatchParams;
use pve_operator::reconcile::error::ReconcileError;
use pve_operator::reconcile::status::StatusWriter;
use pve_operator_api::{MachineRequest, MachineRequestStatus, Phase};

use crate::support::{init_logging, machine_request, server_apply, shared_namespace, small_spec};

#[tokio::test]
async fn a_status_write_from_a_stale_copy_is_refused_and_the_recorded_vmid_survives() {
    init_logging();
    let (_, client, ns) = shared_namespace("status-writes").await;
    let requests: Api<MachineRequest> = Api::namespaced(client, &ns);
    let request = machine_request("contended", small_spec());
    server_apply(
        &requests,
        &PatchParams::apply("e2e-tests"),
        "contended",
        &request,
    )
    .await
    .expect("MachineRequest applies");
    // No controller runs here: two writers share the object, as an old and a new leader would.
    let read = requests.get("contended").await.expect("request");

    // One reconcile writes twice (the VMID before the create is sent, then the rest): the second
    // write goes over the version the first one produced.
    let newer = StatusWriter::new(requests.clone(), &read);
    let recorded = MachineRequestStatus {
        phase: Some(Phase::Provisioning),
        vmid: Some(4242),
        node: Some("pve".into()),
        ..MachineRequestStatus::default()
    };
    newer.write(&recorded).await.expect("the first write");
    let mut later = recorded.clone();
    later.observed_generation = Some(1);
    newer
        .write(&later)
        .await
        .expect("the second write of the same reconcile");

    // A writer still working from the copy read before: its write would drop the VMID.
    let stale = StatusWriter::new(requests.clone(), &read);
    let error = stale
        .write(&MachineRequestStatus {
            phase: Some(Phase::Pending),
            ..MachineRequestStatus::default()
        })
        .await
        .expect_err("a write over an old resourceVersion is refused");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 409),
        "409 Conflict: {error}"
    );
    assert!(
        ReconcileError::Kube(error).is_stale_write(),
        "a conflict is a stale write: started over, neither reported nor a failure"
    );
    let now = requests.get("contended").await.expect("request");
    let status = now.status.expect("status");
    assert_eq!(status.vmid, Some(4242), "the recorded VMID survives");
    assert_eq!(status, later);
}
