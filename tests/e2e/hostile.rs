//! Hostile manifests (issue 12): injection through every string field of MachineRequest,
//! ProxmoxCluster and ProxmoxIdentity with every separator and Unicode line break, absurd
//! numbers, path traversal, forged markers and resources that do not exist. Each is refused at
//! admission by the real kube-apiserver (422, naming the field) or, when only Proxmox can tell,
//! reported by the controller (a condition naming the `spec.` field) with no VM made, no VMID
//! recorded and nothing written into pve-sim's stored config.
//!
//! One table ([`cases`]): admission cases run as server-side dry-run creates (nothing is
//! stored, so an accepted hostile identity cannot linger); controller cases run against one
//! controller and one simulator, all created at once and then awaited. Beside them, the two
//! free-text fields where separators are content (a description, an SSH key's comment) make
//! real VMs whose stored config must hold the text verbatim and nothing more.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::crds::install_crds;
use crate::support::Harness;
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

/// Every separator of a Proxmox property string, path, form body, URL or YAML, and every
/// Unicode line break, by name.
const SEPARATORS: &[(&str, &str)] = &[
    ("comma", ","),
    ("equals", "="),
    ("semicolon", ";"),
    ("colon", ":"),
    ("slash", "/"),
    ("space", " "),
    ("tab", "\t"),
    ("newline", "\n"),
    ("carriage return", "\r"),
    ("NUL", "\0"),
    ("encoded newline", "%0a"),
    ("encoded comma", "%2c"),
    ("double quote", "\""),
    ("single quote", "'"),
    ("hash", "#"),
    ("brace", "{"),
    ("bracket", "["),
    ("ampersand", "&"),
    ("asterisk", "*"),
    ("bang", "!"),
    ("pipe", "|"),
    ("greater-than", ">"),
    ("U+0085 next line", "\u{85}"),
    ("U+2028 line separator", "\u{2028}"),
    ("U+2029 paragraph separator", "\u{2029}"),
    ("U+000B vertical tab", "\u{0B}"),
    ("U+000C form feed", "\u{0C}"),
];

/// The characters that no stored config value may hold (outside the free-text description).
fn is_hostile_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A well-formed ed25519 public key (type, then 32 bytes), without a comment.
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";

/// A string field and how a separator is put into it.
struct InjectionPoint {
    kind: Kind,
    /// Where the value goes (a JSON pointer into `spec`).
    path: &'static str,
    /// The field the refusal must name.
    field: &'static str,
    /// The value with the separator inside, where no separator makes it valid.
    value: fn(&str) -> Value,
}

fn point(
    kind: Kind,
    path: &'static str,
    field: &'static str,
    value: fn(&str) -> Value,
) -> InjectionPoint {
    InjectionPoint {
        kind,
        path,
        field,
        value,
    }
}

fn injection_points() -> Vec<InjectionPoint> {
    use Kind::*;
    let p = point;
    vec![
        p(Request, "/vmName", "spec.vmName", |s| {
            json!(format!("web{s}1"))
        }),
        p(Request, "/placement/node", "spec.placement.node", |s| {
            json!(format!("pve{s}2"))
        }),
        p(
            Request,
            "/placement/allowedNodes",
            "spec.placement.allowedNodes[0]",
            |s| json!([format!("pve{s}2")]),
        ),
        p(
            Request,
            "/placement/strategy",
            "spec.placement.strategy",
            |s| json!(format!("FewestVMs{s}")),
        ),
        p(Request, "/cpu/type", "spec.cpu.type", |s| {
            json!(format!("host{s}x"))
        }),
        p(Request, "/disks/0/slot", "spec.disks[0].slot", |s| {
            json!(format!("scsi0{s}"))
        }),
        p(Request, "/disks/0/storage", "spec.disks[0].storage", |s| {
            json!(format!("local{s}lvm"))
        }),
        p(Request, "/disks/0/cache", "spec.disks[0].cache", |s| {
            json!(format!("none{s}"))
        }),
        p(Request, "/networks/0/name", "spec.networks[0].name", |s| {
            json!(format!("net0{s}"))
        }),
        p(
            Request,
            "/networks/0/bridge",
            "spec.networks[0].bridge",
            |s| json!(format!("vmbr0{s}x")),
        ),
        p(Request, "/networks/0/mac", "spec.networks[0].mac", |s| {
            json!(format!("BC:24:11:2A:3B:4C{s}"))
        }),
        p(
            Request,
            "/networks/0/model",
            "spec.networks[0].model",
            |s| json!(format!("virtio{s}")),
        ),
        p(
            Request,
            "/boot",
            "spec.boot.iso.volume",
            |s| json!({ "iso": { "volume": format!("local:iso/debian{s}12.iso") } }),
        ),
        p(
            Request,
            "/boot",
            "spec.boot.template.name",
            |s| json!({ "template": { "name": format!("debian{s}12") } }),
        ),
        p(
            Request,
            "/boot",
            "spec.boot.template.storage",
            |s| json!({ "template": { "name": "debian-12-template", "storage": format!("local{s}lvm") } }),
        ),
        p(
            Request,
            "/cloudInit/storage",
            "spec.cloudInit.storage",
            |s| json!(format!("local{s}lvm")),
        ),
        p(Request, "/cloudInit/user", "spec.cloudInit.user", |s| {
            json!(format!("debian{s}x"))
        }),
        p(
            Request,
            "/cloudInit/sshKeys",
            "spec.cloudInit.sshKeys[0]",
            |s| json!([SSH_KEY.replacen("ssh-ed", &format!("ssh-ed{s}"), 1)]),
        ),
        p(
            Request,
            "/cloudInit/ipConfigs",
            "spec.cloudInit.ipConfigs[0].interface",
            |s| json!([{ "interface": format!("net0{s}"), "dhcp": true }]),
        ),
        p(
            Request,
            "/cloudInit/ipConfigs",
            "spec.cloudInit.ipConfigs[0].address",
            |s| json!([{ "interface": "net0", "address": format!("192.0.2.10{s}/24") }]),
        ),
        p(
            Request,
            "/cloudInit/ipConfigs",
            "spec.cloudInit.ipConfigs[0].gateway",
            |s| json!([{ "interface": "net0", "address": "192.0.2.10/24", "gateway": format!("192.0.2.1{s}") }]),
        ),
        p(
            Request,
            "/cloudInit/nameservers",
            "spec.cloudInit.nameservers",
            |s| json!([format!("192.0.2.53{s}")]),
        ),
        p(
            Request,
            "/cloudInit/searchDomain",
            "spec.cloudInit.searchDomain",
            |s| json!(format!("example{s}com")),
        ),
        p(
            Request,
            "/firmware",
            "spec.firmware.bios",
            |s| json!({ "bios": format!("SeaBIOS{s}") }),
        ),
        p(
            Request,
            "/firmware",
            "spec.firmware.machine",
            |s| json!({ "machine": format!("q35{s}") }),
        ),
        p(
            Request,
            "/firmware",
            "spec.firmware.efiDisk.storage",
            |s| json!({ "bios": "OVMF", "efiDisk": { "storage": format!("local{s}lvm") } }),
        ),
        p(Request, "/tags", "spec.tags[0]", |s| {
            json!([format!("web{s}1")])
        }),
        p(Request, "/pool", "spec.pool", |s| {
            json!(format!("team{s}a"))
        }),
        p(
            Request,
            "/clusterRef",
            "spec.clusterRef.name",
            |s| json!({ "name": format!("pve{s}1") }),
        ),
        p(Request, "/powerState", "spec.powerState", |s| {
            json!(format!("Running{s}"))
        }),
        p(Request, "/deletionPolicy", "spec.deletionPolicy", |s| {
            json!(format!("Delete{s}"))
        }),
        p(Request, "/pendingChanges", "spec.pendingChanges", |s| {
            json!(format!("Report{s}"))
        }),
        p(Cluster, "/identityRef/name", "spec.identityRef.name", |s| {
            json!(format!("team{s}id"))
        }),
        p(
            Cluster,
            "/allowed/storages",
            "spec.allowed.storages[0]",
            |s| json!([format!("local{s}lvm")]),
        ),
        p(
            Cluster,
            "/allowed/bridges",
            "spec.allowed.bridges[0].name",
            |s| json!([{ "name": format!("vmbr0{s}x") }]),
        ),
        p(Cluster, "/allowed/pools", "spec.allowed.pools[0]", |s| {
            json!([format!("team{s}a")])
        }),
        p(Cluster, "/allowed/nodes", "spec.allowed.nodes[0]", |s| {
            json!([format!("pve{s}2")])
        }),
        p(
            Cluster,
            "/allowed/templates",
            "spec.allowed.templates[0].name",
            |s| json!([{ "name": format!("debian{s}12") }]),
        ),
        p(Identity, "/secretRef/name", "spec.secretRef.name", |s| {
            json!(format!("pve{s}creds"))
        }),
        p(
            Identity,
            "/allowedNamespaces/list",
            "spec.allowedNamespaces.list[0]",
            |s| json!([format!("team{s}a")]),
        ),
        p(
            Identity,
            "/allowed/storages",
            "spec.allowed.storages[0]",
            |s| json!([format!("local{s}lvm")]),
        ),
        p(
            Identity,
            "/allowed/bridges",
            "spec.allowed.bridges[0].name",
            |s| json!([{ "name": format!("vmbr0{s}x") }]),
        ),
    ]
}

/// Every separator in every string field: all refused at admission.
fn injection_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for point in injection_points() {
        for (name, separator) in SEPARATORS {
            cases.push(case(
                format!("{:?} {} with {name}", point.kind, point.field),
                point.kind,
                vec![(point.path, (point.value)(separator))],
                admission(point.field),
            ));
        }
    }
    // The description is free text: separators are content there (see the verbatim test), but
    // a line break or control character that starts a forged marker line is not.
    let uid = "0b9b1a2c-5d3e-4c8e-9f00-123456789abc";
    // (A tab is content: "notes\tpve-operator:" starts no line.)
    for (name, separator) in SEPARATORS.iter().filter(|(_, s)| {
        s.chars()
            .all(|c| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}')
    }) {
        cases.push(case(
            format!("description with a marker line after {name}"),
            Kind::Request,
            vec![(
                "/description",
                json!(format!(
                    "notes{separator}pve-operator: MachineRequest team-a/db uid={uid}"
                )),
            )],
            admission("spec.description"),
        ));
    }
    cases
}

/// Numbers and sizes out of range (and an address only a rule can refuse), at admission.
fn number_cases() -> Vec<Case> {
    use Kind::*;
    let two_31 = json!(2_147_483_648u64);
    let two_63 = json!(9_223_372_036_854_775_808u64);
    let n = |name: &str, kind, path: &'static str, value: Value, field: &str| {
        case(name, kind, vec![(path, value)], admission(field))
    };
    vec![
        n("zero cores", Request, "/cpu/cores", json!(0), "spec.cpu.cores"),
        n("negative cores", Request, "/cpu/cores", json!(-1), "spec.cpu.cores"),
        n("2^31 cores", Request, "/cpu/cores", two_31.clone(), "spec.cpu.cores"),
        n("2^63 cores", Request, "/cpu/cores", two_63.clone(), "spec.cpu.cores"),
        n("fractional cores", Request, "/cpu/cores", json!(1.5), "spec.cpu.cores"),
        n("cores as a string", Request, "/cpu/cores", json!("2"), "spec.cpu.cores"),
        n("zero sockets", Request, "/cpu/sockets", json!(0), "spec.cpu.sockets"),
        n("2^31 sockets", Request, "/cpu/sockets", two_31.clone(), "spec.cpu.sockets"),
        n("zero memory", Request, "/memory/sizeMiB", json!(0), "spec.memory.sizeMiB"),
        n("negative memory", Request, "/memory/sizeMiB", json!(-256), "spec.memory.sizeMiB"),
        n("2^63 memory", Request, "/memory/sizeMiB", two_63.clone(), "spec.memory.sizeMiB"),
        n("1e30 memory", Request, "/memory/sizeMiB", json!(1e30), "spec.memory.sizeMiB"),
        n("memory above 4 TiB", Request, "/memory/sizeMiB", json!(4_194_305), "spec.memory.sizeMiB"),
        n("negative balloon", Request, "/memory/balloonMiB", json!(-1), "spec.memory.balloonMiB"),
        n("balloon above memory", Request, "/memory/balloonMiB", json!(4_194_304), "balloonMiB must not exceed sizeMiB"),
        n("zero disk", Request, "/disks/0/sizeGiB", json!(0), "spec.disks[0].sizeGiB"),
        n("negative disk", Request, "/disks/0/sizeGiB", json!(-1), "spec.disks[0].sizeGiB"),
        n("2^63 disk", Request, "/disks/0/sizeGiB", two_63.clone(), "spec.disks[0].sizeGiB"),
        n("disk above 128 TiB", Request, "/disks/0/sizeGiB", json!(131_073), "spec.disks[0].sizeGiB"),
        n("vlan 0", Request, "/networks/0/vlan", json!(0), "spec.networks[0].vlan"),
        n("negative vlan", Request, "/networks/0/vlan", json!(-1), "spec.networks[0].vlan"),
        n("vlan 4095", Request, "/networks/0/vlan", json!(4095), "spec.networks[0].vlan"),
        n("vlan 65536", Request, "/networks/0/vlan", json!(65536), "spec.networks[0].vlan"),
        n("template vmid 0", Request, "/boot", json!({ "template": { "vmid": 0 } }), "spec.boot.template.vmid"),
        n("template vmid 99", Request, "/boot", json!({ "template": { "vmid": 99 } }), "spec.boot.template.vmid"),
        n("template vmid 10^9", Request, "/boot", json!({ "template": { "vmid": 1_000_000_000 } }), "spec.boot.template.vmid"),
        n("template vmid 2^32", Request, "/boot", json!({ "template": { "vmid": 4_294_967_296u64 } }), "spec.boot.template.vmid"),
        n("negative template vmid", Request, "/boot", json!({ "template": { "vmid": -9000 } }), "spec.boot.template.vmid"),
        n("prefix /33", Request, "/cloudInit/ipConfigs", json!([{ "interface": "net0", "address": "192.0.2.10/33" }]), "spec.cloudInit.ipConfigs[0].address"),
        n("17 disks", Request, "/disks", json!((0..17).map(|i| json!({ "slot": format!("scsi{i}"), "storage": "local-lvm", "sizeGiB": 1 })).collect::<Vec<_>>()), "spec.disks"),
        n("17 NICs", Request, "/networks", json!((0..17).map(|i| json!({ "name": format!("net{i}"), "bridge": "vmbr0" })).collect::<Vec<_>>()), "spec.networks"),
        n("33 SSH keys", Request, "/cloudInit/sshKeys", json!(vec![SSH_KEY; 33]), "spec.cloudInit.sshKeys"),
        n("17 tags", Request, "/tags", json!((0..17).map(|i| format!("t{i}")).collect::<Vec<_>>()), "spec.tags"),
        n("a 4097-character description", Request, "/description", json!("x".repeat(4097)), "spec.description"),
        n("a 64-character VM name", Request, "/vmName", json!("a".repeat(64)), "spec.vmName"),
        n("vmidRange below 100", Identity, "/allowed/vmidRange", json!({ "min": 99, "max": 200 }), "spec.allowed.vmidRange.min"),
        n("vmidRange above 999999999", Identity, "/allowed/vmidRange", json!({ "min": 100, "max": 1_000_000_000 }), "spec.allowed.vmidRange.max"),
        n("vmidRange upside down", Cluster, "/allowed/vmidRange", json!({ "min": 500, "max": 400 }), "vmidRange.min must not exceed vmidRange.max"),
        n("vlan range 0", Cluster, "/allowed/bridges", json!([{ "name": "vmbr0", "vlans": [{ "min": 0, "max": 10 }] }]), "spec.allowed.bridges[0].vlans[0].min"),
        n("vlan range 4095", Identity, "/allowed/bridges", json!([{ "name": "vmbr0", "vlans": [{ "min": 1, "max": 4095 }] }]), "spec.allowed.bridges[0].vlans[0].max"),
        n("vlan range upside down", Cluster, "/allowed/bridges", json!([{ "name": "vmbr0", "vlans": [{ "min": 20, "max": 10 }] }]), "vlans[].min must not exceed vlans[].max"),
        n(
            "a nameserver with an interface zone",
            Request,
            "/cloudInit/nameservers",
            json!(["fe80::1%eth0"]),
            "spec.cloudInit.nameservers",
        ),
        n("allowed template vmid 99", Cluster, "/allowed/templates", json!([{ "vmid": 99 }]), "spec.allowed.templates[0].vmid"),
    ]
}

/// `..`, `../../`, `%2e%2e` and absolute paths wherever a name could become a path.
fn traversal_cases() -> Vec<Case> {
    use Kind::*;
    let mut cases = Vec::new();
    let p = point;
    let places = vec![
        p(Request, "/disks/0/storage", "spec.disks[0].storage", |t| {
            json!(t)
        }),
        p(Request, "/placement/node", "spec.placement.node", |t| {
            json!(t)
        }),
        p(
            Request,
            "/networks/0/bridge",
            "spec.networks[0].bridge",
            |t| json!(t),
        ),
        p(Request, "/pool", "spec.pool", |t| json!(t)),
        p(
            Request,
            "/boot",
            "spec.boot.template.name",
            |t| json!({ "template": { "name": t } }),
        ),
        p(
            Request,
            "/boot",
            "spec.boot.template.storage",
            |t| json!({ "template": { "vmid": 9000, "storage": t } }),
        ),
        p(
            Request,
            "/cloudInit/storage",
            "spec.cloudInit.storage",
            |t| json!(t),
        ),
        p(
            Request,
            "/clusterRef",
            "spec.clusterRef.name",
            |t| json!({ "name": t }),
        ),
        p(Cluster, "/identityRef/name", "spec.identityRef.name", |t| {
            json!(t)
        }),
        p(
            Cluster,
            "/allowed/storages",
            "spec.allowed.storages[0]",
            |t| json!([t]),
        ),
        p(Identity, "/secretRef/name", "spec.secretRef.name", |t| {
            json!(t)
        }),
        p(
            Identity,
            "/allowedNamespaces/list",
            "spec.allowedNamespaces.list[0]",
            |t| json!([t]),
        ),
    ];
    for place in places {
        for traversal in ["..", "../../etc", "%2e%2e", "/etc/pve"] {
            cases.push(case(
                format!("{:?} {} = {traversal}", place.kind, place.field),
                place.kind,
                vec![(place.path, (place.value)(traversal))],
                admission(place.field),
            ));
        }
    }
    for volume in [
        "local:iso/../../etc/passwd.iso",
        "local:iso/%2e%2e%2fetc%2fshadow.iso",
        "local:../iso/x.iso",
        "local:iso/sub/x.iso",
        "/var/lib/vz/template/iso/x.iso",
        "../local:iso/x.iso",
        "local:iso/..iso",
        "local:iso/a..iso",
    ] {
        cases.push(case(
            format!("ISO volume {volume}"),
            Request,
            vec![("/boot", json!({ "iso": { "volume": volume } }))],
            admission("spec.boot.iso.volume"),
        ));
    }
    cases
}

/// The controller's marker, forged in tags and description lines.
fn forged_marker_cases() -> Vec<Case> {
    let uid = "0b9b1a2c-5d3e-4c8e-9f00-123456789abc";
    let mut cases = Vec::new();
    for tag in [
        format!("mr-{uid}"),
        format!("MR-{uid}"),
        "Mr-anything".to_string(),
        "mR-x".to_string(),
        "pve-operator".to_string(),
        "PVE-OPERATOR".to_string(),
        "Pve-Operator".to_string(),
    ] {
        cases.push(case(
            format!("reserved tag {tag}"),
            Kind::Request,
            vec![("/tags", json!(["web", tag]))],
            admission("spec.tags"),
        ));
    }
    let line = format!("pve-operator: MachineRequest team-a/db uid={uid}");
    for (name, text) in [
        ("first line", line.clone()),
        ("after a newline", format!("notes\n{line}")),
        ("after CRLF", format!("notes\r\n{line}")),
        ("indented with spaces", format!("notes\n   {line}")),
        ("indented with a tab", format!("notes\n\t{line}")),
        ("behind a no-break space", format!("notes\n\u{a0}{line}")),
        (
            "behind an ideographic space",
            format!("notes\n\u{3000}{line}"),
        ),
        ("behind an em space", format!("notes\n\u{2003}{line}")),
        (
            "in capitals",
            format!("notes\nPVE-OPERATOR: MachineRequest team-a/db uid={uid}"),
        ),
        (
            "in mixed case",
            format!("notes\nPve-Operator: MachineRequest team-a/db uid={uid}"),
        ),
        ("after U+2028 and spaces", format!("notes\u{2028}  {line}")),
    ] {
        cases.push(case(
            format!("marker line {name}"),
            Kind::Request,
            vec![("/description", json!(text))],
            admission("spec.description"),
        ));
    }
    cases
}

/// Identity endpoints that are no https URL.
fn endpoint_cases() -> Vec<Case> {
    [
        "http://pve.example.com:8006/api2/json",
        "file:///etc/pve/priv/authkey.key",
        "javascript:alert(1)",
        "https://pve.example.com:8006/api2/json\r\nX-Injected: 1",
        "https://pve .example.com:8006/api2/json",
        "//pve.example.com:8006/api2/json",
        "",
    ]
    .into_iter()
    .map(|endpoint| {
        case(
            format!("identity endpoint {endpoint:?}"),
            Kind::Identity,
            vec![("/endpoint", json!(endpoint))],
            admission("spec.endpoint"),
        )
    })
    .collect()
}

/// What passes admission and only Proxmox (or the cluster's other objects) can refuse. The
/// fixtures they name (the VM [`PLAIN_VM`], the ProxmoxClusters `ghost-identity` and
/// `full-range`) are made at the start of the controller test.
fn controller_cases() -> Vec<Case> {
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

/// Every case of the table.
fn cases() -> Vec<Case> {
    let mut all = injection_cases();
    all.extend(number_cases());
    all.extend(traversal_cases());
    all.extend(forged_marker_cases());
    all.extend(endpoint_cases());
    all.extend(controller_cases());
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

#[tokio::test]
async fn hostile_manifests_are_refused_at_admission_naming_the_field() {
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    let namespace = env
        .create_namespace(&client, "hostile-admission")
        .await
        .expect("namespace");
    let bases = Bases {
        identity: format!("{namespace}-identity"),
        secret: "pve-credentials".into(),
        namespace,
    };
    let all = cases();
    let refused: Vec<(usize, &Case)> = all
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.outcome, Outcome::Admission { .. }))
        .collect();
    assert!(refused.len() >= 60, "{} admission cases", refused.len());
    // The base objects themselves are valid: a case fails only for what it changes.
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for kind in [Kind::Request, Kind::Cluster, Kind::Identity] {
        let valid = case("valid", kind, vec![], admission("-"));
        bases
            .api(&client, kind)
            .create(&dry_run, &bases.object(0, &valid))
            .await
            .unwrap_or_else(|e| panic!("the valid {kind:?} is accepted: {e}"));
    }
    let failures: Vec<String> = stream::iter(refused)
        .map(|(index, case)| {
            let (bases, client, dry_run) = (&bases, &client, &dry_run);
            async move {
                let Outcome::Admission { field } = &case.outcome else {
                    return None;
                };
                let result = bases
                    .api(client, case.kind)
                    .create(dry_run, &bases.object(index, case))
                    .await;
                match result {
                    Ok(_) => Some(format!("{}: ACCEPTED", case.name)),
                    Err(kube::Error::Api(status))
                        if status.code == 422 && status.message.contains(field.as_str()) =>
                    {
                        None
                    }
                    Err(kube::Error::Api(status)) => Some(format!(
                        "{}: expected 422 naming {field}, got {} {}",
                        case.name,
                        status.code,
                        excerpt(&status.message)
                    )),
                    Err(other) => Some(format!("{}: not an API error: {other}", case.name)),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of the admission cases went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
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
