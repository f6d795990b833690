//! Hostile manifests (issue 12): injection through every string field of MachineRequest,
//! ProxmoxCluster and ProxmoxIdentity with every separator and Unicode line break, absurd
//! numbers, path traversal, forged markers and resources that do not exist. Each is refused at
//! admission by the real kube-apiserver (422, naming the field) or, when only Proxmox can tell,
//! reported by the controller (a condition naming the `spec.` field) with no VM made, no VMID
//! recorded and nothing written into pve-sim's stored config.
//!
//! One table ([`cases`]): admission cases ([`at_admission`]) run as server-side dry-run creates
//! (nothing is stored, so an accepted hostile identity cannot linger); controller cases
//! ([`past_admission`]) run against one controller and one simulator, all created at once and
//! then awaited. Beside them, the two free-text fields where separators are content (a
//! description, an SSH key's comment) make real VMs whose stored config must hold the text
//! verbatim and nothing more.
//!
//! This module holds what both use: the case type, the valid base objects a case edits, and
//! the table.

mod at_admission;
mod past_admission;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::tenancy::TEST_LABEL;

/// The object a case writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request,
    Cluster,
    Identity,
}

impl Kind {
    fn gvk(self) -> GroupVersionKind {
        let kind = match self {
            Kind::Request => "MachineRequest",
            Kind::Cluster => "ProxmoxCluster",
            Kind::Identity => "ProxmoxIdentity",
        };
        GroupVersionKind::gvk("pve-operator.dev", "v1alpha1", kind)
    }

    /// The condition in which the controller reports a refusal of this kind of object.
    fn condition(self) -> &'static str {
        match self {
            Kind::Request => "Ready",
            Kind::Cluster => "IdentityAllowed",
            Kind::Identity => "SecretValid",
        }
    }
}

/// What must become of a hostile manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The API server refuses it with 422, its message naming `field`.
    Admission { field: String },
    /// Stored; the controller sets the kind's condition False with `reason`, the message naming
    /// `field`; no VM, no VMID.
    Reported { reason: &'static str, field: String },
}

/// One hostile manifest: a valid base object of `kind` with `edits` applied.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    kind: Kind,
    /// JSON pointers into `spec` and the values to put there (`null` removes the key).
    edits: Vec<(&'static str, Value)>,
    outcome: Outcome,
}

fn admission(field: impl Into<String>) -> Outcome {
    Outcome::Admission {
        field: field.into(),
    }
}

fn reported(reason: &'static str, field: impl Into<String>) -> Outcome {
    Outcome::Reported {
        reason,
        field: field.into(),
    }
}

fn case(
    name: impl Into<String>,
    kind: Kind,
    edits: Vec<(&'static str, Value)>,
    outcome: Outcome,
) -> Case {
    Case {
        name: name.into(),
        kind,
        edits,
        outcome,
    }
}

/// A well-formed ed25519 public key (type, then 32 bytes), without a comment.
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";

/// Every case of the table.
fn cases() -> Vec<Case> {
    let mut all = at_admission::injection_cases();
    all.extend(at_admission::number_cases());
    all.extend(at_admission::traversal_cases());
    all.extend(at_admission::forged_marker_cases());
    all.extend(at_admission::endpoint_cases());
    all.extend(past_admission::controller_cases());
    all
}

/// Sets `value` at `pointer` inside `doc`, creating objects on the way; `null` removes the key.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let (last, parents) = parts.split_last().expect("a pointer with a key");
    let mut current = doc;
    for part in parents {
        current = match current {
            Value::Array(items) => &mut items[part.parse::<usize>().expect("array index")],
            other => other
                .as_object_mut()
                .expect("object on the path")
                .entry((*part).to_string())
                .or_insert_with(|| json!({})),
        };
    }
    match current {
        Value::Array(items) => items[last.parse::<usize>().expect("array index")] = value,
        other => {
            let map = other
                .as_object_mut()
                .expect("object at the end of the path");
            if value.is_null() {
                map.remove(*last);
            } else {
                map.insert((*last).to_string(), value);
            }
        }
    }
}

/// Where the cases are applied: the names the base objects refer to.
struct Bases {
    namespace: String,
    /// The identity that clusters refer to.
    identity: String,
    /// The Secret that identities refer to.
    secret: String,
}

impl Bases {
    /// The valid object of `kind` that a case edits.
    fn base_spec(&self, kind: Kind) -> Value {
        match kind {
            Kind::Request => json!({
                "memory": { "sizeMiB": 256 },
                "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 2 }],
                "networks": [{ "name": "net0", "bridge": "vmbr0" }],
                "boot": { "network": {} },
            }),
            Kind::Cluster => json!({ "identityRef": { "name": self.identity } }),
            Kind::Identity => json!({
                "secretRef": { "name": self.secret },
                "allowedNamespaces": { "list": [self.namespace] },
            }),
        }
    }

    /// The object of case number `index`.
    fn object(&self, index: usize, case: &Case) -> DynamicObject {
        let mut spec = self.base_spec(case.kind);
        for (pointer, value) in &case.edits {
            set(&mut spec, pointer, value.clone());
        }
        let gvk = case.kind.gvk();
        let name = self.object_name(index, case.kind);
        let doc = json!({
            "apiVersion": "pve-operator.dev/v1alpha1",
            "kind": gvk.kind,
            "metadata": { "name": name, "labels": { TEST_LABEL: self.namespace } },
            "spec": spec,
        });
        serde_json::from_value(doc).expect("a well-formed object")
    }

    /// Identities are cluster-scoped: their names carry the namespace.
    fn object_name(&self, index: usize, kind: Kind) -> String {
        match kind {
            Kind::Identity => format!("{}-h{index:04}", self.namespace),
            _ => format!("h{index:04}"),
        }
    }

    fn api(&self, client: &Client, kind: Kind) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk(&kind.gvk());
        match kind {
            Kind::Identity => Api::all_with(client.clone(), &resource),
            _ => Api::namespaced_with(client.clone(), &self.namespace, &resource),
        }
    }
}

/// Shortens a message for a failure report (the API server repeats the value, which may be
/// long).
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(400).collect();
    if out.len() < text.len() {
        out.push_str("...");
    }
    out
}
