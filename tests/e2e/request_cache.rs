//! The controller's cache of MachineRequests, filled from the real kube-apiserver: it keeps
//! what the controller reads (spec, status, labels, its own annotations, the resourceVersion)
//! and drops field-manager bookkeeping (`managedFields`, kubectl's last-applied annotation),
//! which is most of each object's size when it holds thousands.

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::{Api, ResourceExt};
use pve_operator::reconcile::RETRY_ANNOTATION;
use pve_operator::reconcile::cache::{self, LAST_APPLIED};
use pve_operator_api::MachineRequest;
use serde_json::json;

use crate::support::{eventually, init_logging, machine_request, shared_namespace, small_spec};

/// What the cache holds of `cached` has none of the bookkeeping and all of `stored`'s content.
fn assert_trimmed_copy(cached: &MachineRequest, stored: &MachineRequest) {
    assert_eq!(cached.metadata.managed_fields, None, "managedFields cached");
    let annotations = cached.annotations();
    assert!(
        !annotations.contains_key(LAST_APPLIED),
        "the last-applied annotation cached"
    );
    assert_eq!(
        annotations.get(RETRY_ANNOTATION),
        stored.annotations().get(RETRY_ANNOTATION)
    );
    assert_eq!(cached.labels(), stored.labels());
    assert_eq!(cached.spec, stored.spec);
    assert_eq!(cached.metadata.finalizers, stored.metadata.finalizers);
    assert_eq!(cached.resource_version(), stored.resource_version());
}

#[tokio::test]
async fn the_request_cache_holds_no_managed_fields_and_no_last_applied_configuration() {
    init_logging();
    let (_, client, ns) = shared_namespace("request-cache").await;
    let requests: Api<MachineRequest> = Api::namespaced(client, &ns);
    let mut doc = machine_request("web", small_spec());
    doc["metadata"]["annotations"] = json!({
        // What client-side `kubectl apply` leaves on an object.
        LAST_APPLIED: serde_json::to_string(&doc).expect("JSON"),
        RETRY_ANNOTATION: "1",
    });
    requests
        .patch("web", &PatchParams::apply("e2e-tests"), &Patch::Apply(&doc))
        .await
        .expect("MachineRequest applies");
    // A second field manager, as the controller's finalizer and status writes are.
    let labelled = json!({ "metadata": { "labels": { "team": "a" } } });
    let stored = requests
        .patch("web", &PatchParams::default(), &Patch::Merge(&labelled))
        .await
        .expect("labels patch");
    assert!(
        stored.managed_fields().len() >= 2,
        "the API server keeps managedFields: {:?}",
        stored.metadata.managed_fields
    );
    assert!(stored.annotations().contains_key(LAST_APPLIED));

    let (reader, writer) = reflector::store();
    let watch =
        tokio::spawn(cache::reflect_requests(requests.clone(), writer).for_each(|_| async {}));
    let key = ObjectRef::new("web").within(&ns);
    // From the initial list...
    eventually("the request in the cache", || reader.get(&key).is_some()).await;
    assert_trimmed_copy(&reader.get(&key).expect("cached"), &stored);

    // ...and from a watch event.
    let relabelled = json!({ "metadata": { "labels": { "team": "b" } } });
    let stored = requests
        .patch("web", &PatchParams::default(), &Patch::Merge(&relabelled))
        .await
        .expect("labels patch");
    eventually("the change in the cache", || {
        reader
            .get(&key)
            .is_some_and(|r| r.resource_version() == stored.resource_version())
    })
    .await;
    assert_trimmed_copy(&reader.get(&key).expect("cached"), &stored);
    watch.abort();
}
