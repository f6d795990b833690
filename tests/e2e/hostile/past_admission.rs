//! Hostile manifests that pass admission and that only Proxmox (or the cluster's other
//! objects) can refuse: each is reported by the controller in a condition naming the `spec.`
//! field, with no VM made, no VMID recorded and nothing written into pve-sim's stored config;
//! and the free text where separators are content (a description, an SSH key's comment) arrives
//! verbatim and adds no config key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::api::{DynamicObject, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

use super::{Bases, Case, Kind, Outcome, SSH_KEY, case, cases, excerpt, reported, set};
use crate::support::Harness;

/// What passes admission and only Proxmox (or the cluster's other objects) can refuse. The
/// fixtures they name (the VM [`PLAIN_VM`], the ProxmoxClusters `ghost-identity` and
/// `full-range`) are made at the start of the controller test.
pub(super) fn controller_cases() -> Vec<Case> {
    use Kind::*;
    let disk = |storage: &str| json!([{ "slot": "scsi0", "storage": storage, "sizeGiB": 2 }]);
    let r = |name: &str, edits: Vec<(&'static str, Value)>, reason, field: &str| {
        case(name, Request, edits, reported(reason, field))
    };
    vec![
        r(
            "a storage that does not exist",
            vec![("/disks", disk("ghost"))],
            "NotFoundInProxmox",
            "spec.disks[0].storage",
        ),
        r(
            "a storage name with dots",
            vec![("/disks", disk("a..b"))],
            "NotFoundInProxmox",
            "spec.disks[0].storage",
        ),
        r(
            "a storage without images",
            vec![("/disks", disk("local"))],
            "UnsuitableInProxmox",
            "spec.disks[0].storage",
        ),
        r(
            "a bridge that does not exist",
            vec![("/networks", json!([{ "name": "net0", "bridge": "vmbr9" }]))],
            "NotFoundInProxmox",
            "spec.networks[0].bridge",
        ),
        r(
            "a bridge name with dots",
            vec![(
                "/networks",
                json!([{ "name": "net0", "bridge": "vmbr0.." }]),
            )],
            "NotFoundInProxmox",
            "spec.networks[0].bridge",
        ),
        r(
            "a node that does not exist",
            vec![("/placement", json!({ "node": "pve9" }))],
            "NoSuitableNode",
            "spec.placement.node",
        ),
        r(
            "allowed nodes that do not exist",
            vec![("/placement", json!({ "allowedNodes": ["pve8", "pve9"] }))],
            "NoSuitableNode",
            "spec.placement.allowedNodes",
        ),
        r(
            "a pool that does not exist",
            vec![("/pool", json!("ghost"))],
            "NotFoundInProxmox",
            "spec.pool",
        ),
        r(
            "an ISO that does not exist",
            vec![(
                "/boot",
                json!({ "iso": { "volume": "local:iso/ghost.iso" } }),
            )],
            "NotFoundInProxmox",
            "spec.boot.iso.volume",
        ),
        r(
            "an ISO on a storage that does not exist",
            vec![(
                "/boot",
                json!({ "iso": { "volume": "ghost:iso/debian-12.7.0-amd64-netinst.iso" } }),
            )],
            "NotFoundInProxmox",
            "spec.boot.iso.volume",
        ),
        r(
            "an ISO on a storage without ISOs",
            vec![(
                "/boot",
                json!({ "iso": { "volume": "local-lvm:iso/debian-12.7.0-amd64-netinst.iso" } }),
            )],
            "UnsuitableInProxmox",
            "spec.boot.iso.volume",
        ),
        r(
            "a template name that does not exist",
            vec![
                ("/boot", json!({ "template": { "name": "ghost-template" } })),
                ("/disks", json!([])),
            ],
            "NotFoundInProxmox",
            "spec.boot.template.name",
        ),
        r(
            "a template VMID that does not exist",
            vec![
                ("/boot", json!({ "template": { "vmid": 424242 } })),
                ("/disks", json!([])),
            ],
            "NotFoundInProxmox",
            "spec.boot.template.vmid",
        ),
        r(
            "a VM that is not a template, by name",
            vec![
                ("/boot", json!({ "template": { "name": "plain-vm" } })),
                ("/disks", json!([])),
            ],
            "UnsuitableInProxmox",
            "spec.boot.template.name",
        ),
        r(
            "a VM that is not a template, by VMID",
            vec![
                ("/boot", json!({ "template": { "vmid": PLAIN_VM } })),
                ("/disks", json!([])),
            ],
            "UnsuitableInProxmox",
            "spec.boot.template.vmid",
        ),
        r(
            "a clone target storage that does not exist",
            vec![
                (
                    "/boot",
                    json!({ "template": { "vmid": 9000, "storage": "ghost" } }),
                ),
                ("/disks", json!([])),
            ],
            "NotFoundInProxmox",
            "spec.boot.template.storage",
        ),
        r(
            "a clone target storage without images",
            vec![
                (
                    "/boot",
                    json!({ "template": { "vmid": 9000, "storage": "local" } }),
                ),
                ("/disks", json!([])),
            ],
            "UnsuitableInProxmox",
            "spec.boot.template.storage",
        ),
        r(
            "a cloud-init storage that does not exist",
            vec![("/cloudInit", json!({ "storage": "ghost" }))],
            "NotFoundInProxmox",
            "spec.cloudInit.storage",
        ),
        r(
            "a cloud-init storage without images",
            vec![("/cloudInit", json!({ "storage": "local" }))],
            "UnsuitableInProxmox",
            "spec.cloudInit.storage",
        ),
        r(
            "an EFI storage that does not exist",
            vec![(
                "/firmware",
                json!({ "bios": "OVMF", "efiDisk": { "storage": "ghost" } }),
            )],
            "NotFoundInProxmox",
            "spec.firmware.efiDisk.storage",
        ),
        r(
            "4 TiB of memory",
            vec![("/memory/sizeMiB", json!(4_194_304))],
            "NoSuitableNode",
            "spec.memory.sizeMiB",
        ),
        r(
            "4 TiB of memory on a named node",
            vec![
                ("/memory/sizeMiB", json!(4_194_304)),
                ("/placement", json!({ "node": "pve" })),
            ],
            "UnsuitableInProxmox",
            "spec.memory.sizeMiB",
        ),
        r(
            "4 TiB of memory on the emptiest node",
            vec![
                ("/memory/sizeMiB", json!(4_194_304)),
                ("/placement", json!({ "strategy": "FewestVMs" })),
            ],
            "UnsuitableInProxmox",
            "spec.memory.sizeMiB",
        ),
        r(
            "4 TiB of memory for a clone",
            vec![
                ("/memory/sizeMiB", json!(4_194_304)),
                ("/boot", json!({ "template": { "vmid": 9000 } })),
                ("/disks", json!([])),
            ],
            "UnsuitableInProxmox",
            "spec.memory.sizeMiB",
        ),
        r(
            "512 cores times 4 sockets",
            vec![("/cpu", json!({ "cores": 512, "sockets": 4 }))],
            "UnsuitableInProxmox",
            "spec.cpu",
        ),
        r(
            "17 cores on a 16-CPU node",
            vec![("/cpu", json!({ "cores": 17 }))],
            "UnsuitableInProxmox",
            "spec.cpu",
        ),
        r(
            "an SSH key split by a space",
            vec![(
                "/cloudInit",
                json!({ "sshKeys": [SSH_KEY.replacen("AAAAIAEC", "AAAAIAEC ", 1)] }),
            )],
            "InvalidSpec",
            "spec.cloudInit.sshKeys[0]",
        ),
        r(
            "an I/O thread on a SATA disk",
            vec![(
                "/disks",
                json!([{ "slot": "sata0", "storage": "local-lvm", "sizeGiB": 2, "iothread": true }]),
            )],
            "InvalidSpec",
            "spec.disks[0]",
        ),
        r(
            "SSD emulation on a virtio disk",
            vec![(
                "/disks",
                json!([{ "slot": "virtio0", "storage": "local-lvm", "sizeGiB": 2, "ssd": true }]),
            )],
            "InvalidSpec",
            "spec.disks[0]",
        ),
        r(
            "a ProxmoxCluster that does not exist",
            vec![("/clusterRef", json!({ "name": "ghost" }))],
            "ClusterUnavailable",
            "spec.clusterRef",
        ),
        r(
            "a ProxmoxCluster whose identity does not exist",
            vec![("/clusterRef", json!({ "name": "ghost-identity" }))],
            "IdentityNotFound",
            "spec.identityRef",
        ),
        r(
            "a VMID range with no free VMID",
            vec![("/clusterRef", json!({ "name": "full-range" }))],
            "VmidRangeExhausted",
            "spec.allowed.vmidRange",
        ),
        case(
            "a cluster on an identity that does not exist",
            Cluster,
            vec![("/identityRef/name", json!("ghost"))],
            reported("IdentityNotFound", "spec.identityRef"),
        ),
        case(
            "a cluster that widens its identity",
            Cluster,
            vec![("/allowed/storages", json!(["local-lvm", "ghost"]))],
            reported("WidensIdentity", "spec.allowed.storages[1]"),
        ),
        case(
            "an identity whose Secret does not exist",
            Identity,
            vec![("/secretRef/name", json!("ghost"))],
            reported("SecretNotFound", "spec.secretRef"),
        ),
        case(
            "an identity endpoint with a password in it",
            Identity,
            vec![(
                "/endpoint",
                json!(format!(
                    "https://root:{ENDPOINT_CANARY}@pve.invalid:8006/api2/json"
                )),
            )],
            reported("EndpointInvalid", "spec.endpoint"),
        ),
        case(
            "an identity endpoint with an encoded newline",
            Identity,
            vec![(
                "/endpoint",
                json!("https://pve.invalid:8006/api2/json%0d%0aX-Injected:%201"),
            )],
            reported("EndpointInvalid", "spec.endpoint"),
        ),
        case(
            "an identity endpoint with separators in the host",
            Identity,
            vec![("/endpoint", json!("https://pve,x=1;y:8006/api2/json"))],
            reported("EndpointMismatch", "spec.endpoint"),
        ),
    ]
}

/// The password in a hostile identity endpoint, which must appear in no status.
const ENDPOINT_CANARY: &str = "endpoint-canary-7d1f";

/// The VMID of the fixture VM that is not a template.
const PLAIN_VM: u32 = 8000;

/// The characters that no stored config value may hold (outside the free-text description).
fn is_hostile_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The condition `type_` of an object, as (status, reason, message).
fn condition_of(object: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    let conditions = object.data["status"]["conditions"].as_array()?;
    let found = conditions.iter().find(|c| c["type"] == type_)?;
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// Whether the controller has decided about a case's object: its condition says the expected
/// reason, or (for a request) it went further than it may (a VMID recorded, Ready).
fn decided(object: &DynamicObject, kind: Kind, reason: &str) -> bool {
    let refused = condition_of(object, kind.condition())
        .is_some_and(|(status, r, _)| status == "False" && r == reason);
    let went_on = kind == Kind::Request
        && (!object.data["status"]["vmid"].is_null()
            || condition_of(object, "Ready").is_some_and(|(status, _, _)| status == "True"));
    refused || went_on
}

/// Waits until the controller has decided about case `index`, and says what is wrong with the
/// decision, if anything.
async fn check_reported(h: &Harness, bases: &Bases, index: usize, case: &Case) -> Option<String> {
    let Outcome::Reported { reason, field } = &case.outcome else {
        return None;
    };
    let api = bases.api(&h.client, case.kind);
    let name = bases.object_name(index, case.kind);
    let kind = case.kind;
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api.clone(), &name, move |o: Option<&DynamicObject>| {
            o.is_some_and(|o| decided(o, kind, reason))
        }),
    )
    .await;
    let object = match waited {
        Ok(Ok(Some(object))) => object,
        _ => {
            let now = api.get_opt(&name).await.ok().flatten();
            let status = now.map(|o| o.data["status"].clone()).unwrap_or_default();
            return Some(format!(
                "{}: never reported {reason}; status: {}",
                case.name,
                excerpt(&status.to_string())
            ));
        }
    };
    let (status, got, message) = condition_of(&object, kind.condition()).unwrap_or_default();
    if status != "False" || got != *reason || !message.contains(field.as_str()) {
        return Some(format!(
            "{}: expected {} False {reason} naming {field}, got {status} {got}: {}",
            case.name,
            kind.condition(),
            excerpt(&message)
        ));
    }
    if object.data["status"].to_string().contains(ENDPOINT_CANARY) {
        return Some(format!(
            "{}: the endpoint's password is in the status",
            case.name
        ));
    }
    if kind == Kind::Request && !object.data["status"]["vmid"].is_null() {
        return Some(format!(
            "{}: a VMID was recorded ({}) before the refusal",
            case.name, object.data["status"]["vmid"]
        ));
    }
    None
}

/// Decodes `%XX` escapes (Proxmox keeps `sshkeys` URI-encoded in the config).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Free text with every separator that is content there, and lines that look like config
/// lines: it must arrive as it is, as the description and nothing else.
const VERBATIM_DESCRIPTION: &str = "notes , = ; : / \t & * ! | > { [ # \" ' %0a %2c %00 \u{2028} \u{2029} end\nmemory: 99999\ntags: mr-forged;pve-operator\n[PENDING]\ndelete: net0\n#comment\nname=evil&cores=64";

/// An SSH key comment with every separator that is content in cloud-init's YAML.
const VERBATIM_COMMENT: &str = "laptop,work=1;a/b&c*d!e|f>g{h[i\"j'k%0a%2c%00 a:b tail#x";

#[tokio::test]
async fn hostile_manifests_past_admission_are_reported_with_no_vm_and_nothing_injected() {
    let h = Harness::start("hostile").await;
    let namespace = h.namespace.clone();
    // A VM that is not a template, for the template cases.
    h.sim.with_state(|state| {
        let mut vm = pve_sim::state::Vm::new(PLAIN_VM, "pve");
        for (key, value) in [("name", "plain-vm"), ("memory", "512"), ("cores", "1")] {
            vm.conf.insert(key.into(), value.into());
        }
        state.vms.insert(PLAIN_VM, vm);
    });
    let baseline: BTreeSet<u32> = h
        .sim
        .with_state(|state| state.vms.keys().copied().collect());
    let identity = h
        .create_identity(
            "good",
            &h.root_config(),
            json!({
                "allowedNamespaces": { "list": [namespace] },
                "allowed": { "storages": ["local-lvm", "local"] },
            }),
        )
        .await;
    let tight = h
        .create_identity(
            "tight",
            &h.root_config(),
            json!({
                "allowedNamespaces": { "list": [namespace] },
                "allowed": { "vmidRange": { "min": 9000, "max": 9000 } },
            }),
        )
        .await;
    h.create_cluster("ghost-identity", &format!("{namespace}-ghost"), json!({}))
        .await;
    h.create_cluster("full-range", &tight, json!({})).await;
    let bases = Bases {
        namespace: namespace.clone(),
        secret: identity.clone(),
        identity,
    };

    let all = cases();
    let reported: Vec<(usize, &Case)> = all
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.outcome, Outcome::Reported { .. }))
        .collect();
    // Created from JSON, byte for byte (an apply patch is YAML to the API server, which folds
    // the Unicode line breaks of a quoted scalar).
    for (index, case) in &reported {
        bases
            .api(&h.client, case.kind)
            .create(&PostParams::default(), &bases.object(*index, case))
            .await
            .unwrap_or_else(|e| panic!("{}: passes admission: {e}", case.name));
    }
    // Content, not structure: these make VMs, with the text as it was written.
    let base = bases.base_spec(Kind::Request);
    let mut described = base.clone();
    set(&mut described, "/description", json!(VERBATIM_DESCRIPTION));
    let key = format!("{SSH_KEY} {VERBATIM_COMMENT}");
    let mut keyed = base.clone();
    set(&mut keyed, "/cloudInit", json!({ "sshKeys": [key] }));
    for (name, spec) in [
        ("clean", &base),
        ("described", &described),
        ("keyed", &keyed),
    ] {
        let object = json!({
            "apiVersion": "pve-operator.dev/v1alpha1", "kind": "MachineRequest",
            "metadata": { "name": name }, "spec": spec,
        });
        bases
            .api(&h.client, Kind::Request)
            .create(
                &PostParams::default(),
                &serde_json::from_value(object).expect("object"),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} is accepted: {e}"));
    }

    let mut failures: Vec<String> = stream::iter(&reported)
        .map(|(index, case)| check_reported(&h, &bases, *index, case))
        .buffer_unordered(64)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;

    let mut verbatim = BTreeMap::new();
    for name in ["clean", "described", "keyed"] {
        let ready = h.wait_ready(name).await;
        let vmid = ready.status.as_ref().and_then(|s| s.vmid).expect("vmid");
        let uid = ready.metadata.uid.clone().expect("uid");
        verbatim.insert(name, (vmid, uid));
    }
    let vms: BTreeMap<u32, pve_sim::state::Vm> = h.sim.with_state(|state| state.vms.clone());

    // Nothing else exists: no VM for any refused case.
    let expected: BTreeSet<u32> = baseline
        .iter()
        .copied()
        .chain(verbatim.values().map(|(vmid, _)| *vmid))
        .collect();
    let present: BTreeSet<u32> = vms.keys().copied().collect();
    if present != expected {
        failures.push(format!(
            "VMs in Proxmox: {present:?}, expected only {expected:?}"
        ));
    }
    let requests = bases.api(&h.client, Kind::Request);
    for (index, case) in reported.iter().filter(|(_, c)| c.kind == Kind::Request) {
        let object = requests
            .get(&bases.object_name(*index, case.kind))
            .await
            .expect("request");
        let uid = object.metadata.uid.unwrap_or_default();
        for vm in vms.values() {
            if vm
                .conf
                .values()
                .chain(vm.pending.values())
                .any(|v| v.contains(&uid))
            {
                failures.push(format!("{}: VM {} carries its uid", case.name, vm.vmid));
            }
        }
    }
    // Nothing injected: config keys are plain, values hold no control character or line break
    // (the description aside, which is free text and checked whole below).
    for vm in vms.values() {
        for (key, value) in vm.conf.iter().chain(vm.pending.iter()) {
            let plain_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !plain_key {
                failures.push(format!("VM {}: config key {key:?}", vm.vmid));
            }
            if key != "description" && value.chars().any(is_hostile_char) {
                failures.push(format!("VM {}: {key} = {value:?}", vm.vmid));
            }
        }
    }
    let conf = |name: &str| &vms[&verbatim[name].0].conf;
    let keys = |name: &str| conf(name).keys().cloned().collect::<BTreeSet<String>>();
    let marker = |name: &str| {
        format!(
            "pve-operator: MachineRequest {namespace}/{name} uid={}",
            verbatim[name].1
        )
    };
    if conf("described").get("description")
        != Some(&format!(
            "{VERBATIM_DESCRIPTION}\n\n{}",
            marker("described")
        ))
    {
        failures.push(format!(
            "the description did not arrive verbatim: {:?}",
            conf("described").get("description")
        ));
    }
    if keys("described") != keys("clean") {
        failures.push(format!(
            "the description changed the config's keys: {:?} vs {:?}",
            keys("described"),
            keys("clean")
        ));
    }
    let stored_keys = conf("keyed").get("sshkeys").map(|k| percent_decode(k));
    let lines: Vec<&str> = stored_keys
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines != [key.as_str()] {
        failures.push(format!(
            "the SSH key did not arrive verbatim, as one key: {lines:?}"
        ));
    }
    let added: BTreeSet<String> = keys("keyed").difference(&keys("clean")).cloned().collect();
    let drive = added.iter().find(|k| *k != "sshkeys");
    if added.len() != 2
        || !added.contains("sshkeys")
        || !drive.is_some_and(|d| conf("keyed")[d].contains("cloudinit"))
    {
        failures.push(format!(
            "the SSH key added more than a cloud-init drive and itself: {added:?}"
        ));
    }
    h.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} controller checks went wrong:\n{}",
        failures.len(),
        reported.len(),
        failures.join("\n")
    );
}
