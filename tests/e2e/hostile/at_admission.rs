//! Hostile manifests the real kube-apiserver refuses at admission (422, naming the field),
//! tried as server-side dry-run creates: every separator and Unicode line break in every string
//! field, numbers and sizes out of range, path traversal, forged markers, identity endpoints
//! that are no https URL.

use futures::{StreamExt, stream};
use kube::api::PostParams;
use serde_json::{Value, json};

use super::{Bases, Case, Kind, Outcome, SSH_KEY, admission, case, cases, excerpt};
use crate::support::shared_namespace;

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
pub(super) fn injection_cases() -> Vec<Case> {
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
pub(super) fn number_cases() -> Vec<Case> {
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
pub(super) fn traversal_cases() -> Vec<Case> {
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
pub(super) fn forged_marker_cases() -> Vec<Case> {
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
pub(super) fn endpoint_cases() -> Vec<Case> {
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

#[tokio::test]
async fn hostile_manifests_are_refused_at_admission_naming_the_field() {
    let (_, client, namespace) = shared_namespace("hostile-admission").await;
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
