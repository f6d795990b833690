//! What the controller keeps of an object in its caches (reflector stores): everything but the
//! bookkeeping it never reads. A MachineRequest's `managedFields` (one entry per field manager:
//! the applier, the finalizer patch, each status write) are more than half of its size, and
//! `kubectl apply` adds the whole previous object again as an annotation; the stores hold every
//! request, so both are dropped before an object enters one.

use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource};
use pve_operator_api::MachineRequest;

/// The annotation in which client-side `kubectl apply` keeps the object it last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `object`'s managed fields and `kubectl apply`'s last-applied annotation; everything
/// else (spec, status, labels, other annotations, finalizers, resourceVersion) is kept.
pub fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The watch of `api`'s MachineRequests that keeps `writer`'s store (the controller's cache of
/// every request) current, each object [`trim`]med before it is stored.
pub fn reflect_requests(
    api: Api<MachineRequest>,
    writer: reflector::store::Writer<MachineRequest>,
) -> impl futures::Stream<Item = Result<watcher::Event<MachineRequest>, watcher::Error>> + Send {
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(trim)
        .reflect(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_fields_and_the_last_applied_annotation_go_and_the_rest_stays() {
        let mut request: MachineRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "pve-operator.dev/v1alpha1", "kind": "MachineRequest",
            "metadata": {
                "name": "web", "namespace": "ns", "resourceVersion": "7",
                "finalizers": ["pve-operator.dev/vm-cleanup"],
                "annotations": { LAST_APPLIED: "{\"spec\":{}}", "pve-operator.dev/retry": "1" },
                "managedFields": [{ "manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {} }],
            },
            "spec": {
                "memory": { "sizeMiB": 512 },
                "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 2 }],
                "networks": [{ "name": "net0", "bridge": "vmbr0" }],
                "boot": { "network": {} },
            },
        }))
        .expect("a MachineRequest");
        let before = request.clone();
        trim(&mut request);
        assert_eq!(request.metadata.managed_fields, None);
        let annotations = request.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["pve-operator.dev/retry"], "1");
        assert_eq!(request.spec, before.spec);
        assert_eq!(request.metadata.finalizers, before.metadata.finalizers);
        assert_eq!(request.metadata.resource_version.as_deref(), Some("7"));

        let mut only_last_applied = before;
        only_last_applied
            .metadata
            .annotations
            .as_mut()
            .map(|a| a.remove("pve-operator.dev/retry"));
        trim(&mut only_last_applied);
        assert_eq!(only_last_applied.metadata.annotations, None);
    }
}
