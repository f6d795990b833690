//! The identity marker: tags, description line, SMBIOS uuid, and its release.

use pve_operator_api::MachineRequest;
use serde_json::json;

use super::fixtures::*;
use crate::vmspec::{Marker, MarkerMismatch, Ownership, release_marker};

#[test]
fn marker_values_are_a_valid_lowercase_tag_a_readable_line_and_the_smbios_uuid() {
    let m = marker();
    assert_eq!(m.uid_tag(), format!("mr-{UID}"));
    assert_eq!(
        m.description_line(),
        format!("pve-operator: MachineRequest default/web-1 uid={UID}")
    );
    assert_eq!(m.smbios1(), format!("uuid={UID}"));
    assert!(Marker::is_reserved_tag(&m.uid_tag()) && Marker::is_reserved_tag(Marker::MANAGED_TAG));
    assert!(Marker::is_reserved_line(&m.description_line()));
    let upper = Marker::new("0B9B1A2C-5D3E-4C8E-9F00-123456789ABC", "ns", "n");
    assert_eq!(upper.uid_tag(), format!("mr-{UID}"));
    let odd = Marker::new("a b/c", "ns", "n");
    assert_eq!(odd.uid_tag(), "mr-a-b-c");
    assert_eq!(odd.smbios_uuid(), None, "only a UUID goes into smbios1");
}

#[test]
fn marker_of_a_request_needs_its_uid() {
    let mut mr = MachineRequest::new("web-1", small_iso());
    mr.metadata.namespace = Some("default".into());
    assert_eq!(Marker::of(&mr), None);
    mr.metadata.uid = Some(UID.into());
    assert_eq!(Marker::of(&mr), Some(marker()));
}

#[test]
fn tags_identify_the_request_case_insensitively_and_map_back_to_its_uid() {
    let m = marker();
    let own = m.uid_tag();
    let upper = own.to_uppercase();
    assert!(m.is_in_tags(&["web", own.as_str()]));
    assert!(m.is_in_tags(&[upper.as_str()]));
    assert!(!m.is_in_tags(&["pve-operator", "web"]));
    assert!(!Marker::new("other", "default", "web-1").is_in_tags(&[own.as_str()]));
    assert!(
        !m.is_in_tags(&[&format!("{own}0"), "mr-"]),
        "only the whole tag counts"
    );
}

/// A config with our uid tag (`tag`), our marker line (`line`) and `smbios1`, plus a user's.
fn config(tag: bool, line: bool, smbios: Option<&str>) -> pve_client::api::vmconfig::VmConfigView {
    let m = marker();
    let mut values = json!({"digest": "ab", "name": "web-1"});
    let mut tags = vec!["web".to_owned()];
    if tag {
        tags.push(m.uid_tag());
    }
    values["tags"] = json!(tags.join(";"));
    values["description"] = json!(if line {
        format!("notes\n\n{}\n", m.description_line())
    } else {
        "notes\n".to_owned()
    });
    if let Some(uuid) = smbios {
        values["smbios1"] = json!(format!("uuid={uuid}"));
    }
    view(values)
}

const OTHER: &str = "11111111-2222-3333-4444-555555555555";

/// (case, uid tag, marker line, SMBIOS uuid, at the recorded VMID, verdict)
type Case<'a> = (&'a str, bool, bool, Option<&'a str>, bool, Ownership);

#[test]
fn only_the_full_marker_makes_a_vm_ours_and_every_part_missing_is_named() {
    let m = marker();
    let upper = UID.to_uppercase();
    let cases: Vec<Case> = vec![
        ("full", true, true, Some(UID), false, Ownership::Full),
        (
            "full, uuid upper case",
            true,
            true,
            Some(&upper),
            false,
            Ownership::Full,
        ),
        ("full, no smbios1", true, true, None, false, Ownership::Full),
        (
            "a copy: tag and line, another uuid",
            true,
            true,
            Some(OTHER),
            true,
            Ownership::Partial(MarkerMismatch::SmbiosMismatch),
        ),
        (
            "tag alone",
            true,
            false,
            Some(UID),
            true,
            Ownership::Partial(MarkerMismatch::TagWithoutLine),
        ),
        (
            "tag alone, no uuid",
            true,
            false,
            None,
            false,
            Ownership::Partial(MarkerMismatch::TagWithoutLine),
        ),
        (
            "clone window",
            false,
            true,
            Some(OTHER),
            true,
            Ownership::CloneWindow,
        ),
        (
            "clone window, no uuid",
            false,
            true,
            None,
            true,
            Ownership::CloneWindow,
        ),
        (
            "line alone elsewhere",
            false,
            true,
            Some(OTHER),
            false,
            Ownership::Partial(MarkerMismatch::LineWithoutTag),
        ),
        (
            "uuid alone",
            false,
            false,
            Some(UID),
            true,
            Ownership::Partial(MarkerMismatch::SmbiosOnly),
        ),
        (
            "nothing",
            false,
            false,
            Some(OTHER),
            true,
            Ownership::Absent,
        ),
        (
            "nothing at all",
            false,
            false,
            None,
            false,
            Ownership::Absent,
        ),
    ];
    for (case, tag, line, smbios, recorded, expected) in cases {
        let got = m.ownership(&config(tag, line, smbios), recorded);
        assert_eq!(got, expected, "{case}");
        assert_eq!(
            got.is_ours(),
            matches!(expected, Ownership::Full | Ownership::CloneWindow),
            "{case}"
        );
    }
    // Each mismatch says which part is missing, and names no other request.
    for (mismatch, part) in [
        (
            MarkerMismatch::TagWithoutLine,
            "not its description marker line",
        ),
        (MarkerMismatch::LineWithoutTag, "not its uid tag"),
        (MarkerMismatch::SmbiosMismatch, "SMBIOS uuid"),
        (MarkerMismatch::SmbiosOnly, "neither its uid tag nor"),
    ] {
        let text = mismatch.to_string();
        assert!(text.contains(part), "{mismatch:?}: {text}");
        assert!(!text.contains("default/") && !text.contains(UID), "{text}");
    }
}

#[test]
fn a_template_is_never_ours_and_another_requests_marker_is_not_ours() {
    let m = marker();
    let mut template = config(true, true, Some(UID));
    template.values.insert("template".into(), "1".into());
    assert_eq!(m.ownership(&template, true), Ownership::Template);
    let foreign = view(json!({
        "digest": "ab",
        "tags": format!("pve-operator;mr-{OTHER}"),
        "description": format!("pve-operator: MachineRequest default/web-1 uid={OTHER}\n"),
        "smbios1": format!("uuid={OTHER}"),
    }));
    assert_eq!(m.ownership(&foreign, true), Ownership::Absent);
    let prefix_only = format!("pve-operator: MachineRequest default/web-1 uid={UID}0");
    assert!(!m.is_in_description(&prefix_only));
    // A uid that is not a UUID is never written as SMBIOS uuid, so none is asked for.
    let odd = Marker::new("not-a-uuid", "ns", "n");
    let odd_vm = view(json!({
        "digest": "ab",
        "tags": odd.uid_tag(),
        "description": odd.description_line(),
        "smbios1": format!("uuid={OTHER}"),
    }));
    assert_eq!(odd.ownership(&odd_vm, false), Ownership::Full);
}

#[test]
fn the_reserved_namespace_is_the_managed_tag_every_mr_tag_and_every_pve_operator_line() {
    for tag in [
        "pve-operator",
        "PVE-Operator",
        " pve-operator ",
        "mr-x",
        "MR-",
        "Mr-1234",
    ] {
        assert!(Marker::is_reserved_tag(tag), "{tag:?} is reserved");
    }
    for tag in ["web", "mr", "xmr-1", "pve-operator2", "pve", "m-r"] {
        assert!(!Marker::is_reserved_tag(tag), "{tag:?} is the user's");
    }
    for line in [
        "pve-operator: MachineRequest a/b uid=c",
        "  PVE-Operator:anything",
        "\tpve-operator:",
        "\u{00a0}pve-operator: x",
    ] {
        assert!(Marker::is_reserved_line(line), "{line:?} is reserved");
    }
    for line in [
        "managed by pve-operator: yes",
        "pve-operator",
        "pve-operator :",
        "",
    ] {
        assert!(!Marker::is_reserved_line(line), "{line:?} is the user's");
    }
}

#[test]
fn reserved_tags_and_lines_in_a_stored_spec_never_reach_proxmox() {
    let m = marker();
    let mut spec = small_iso();
    spec.tags = vec![
        "web".into(),
        format!("mr-{OTHER}"),
        "PVE-Operator".into(),
        "MR-anything".into(),
    ];
    spec.description = Some(format!(
        "Web server\n  pve-operator: MachineRequest team-b/db uid={OTHER}\nPVE-OPERATOR: forged\nend"
    ));
    let config = create_config(&spec, &m, "web-1").expect("valid spec");
    assert_eq!(config.tags, ["pve-operator", m.uid_tag().as_str(), "web"]);
    assert_eq!(
        config.description.as_deref(),
        Some(format!("Web server\nend\n\n{}", m.description_line()).as_str())
    );
    let vm = FakeVm::create(100, &config);
    assert_eq!(m.ownership(&vm.view(), false), Ownership::Full);
    let other = Marker::new(OTHER, "team-b", "db");
    assert_eq!(other.ownership(&vm.view(), true), Ownership::Absent);
    // A description of nothing but reserved lines leaves only the marker.
    spec.description = Some("pve-operator: x\n".into());
    let config = create_config(&spec, &m, "web-1").expect("valid spec");
    assert_eq!(config.description, Some(m.description_line()));
    // Drift correction removes what was forged in Proxmox behind the controller's back.
    let mut vm = FakeVm::create(100, &config);
    vm.values.insert(
        "tags".into(),
        format!("{};mr-{OTHER};pve-operator", m.uid_tag()),
    );
    let plan = plan_update(&spec, &m, "web-1", &vm.view()).expect("valid spec");
    vm.apply(&plan);
    assert_eq!(other.ownership(&vm.view(), true), Ownership::Absent);
    assert_eq!(m.ownership(&vm.view(), false), Ownership::Full);
}

#[test]
fn release_removes_our_tags_and_line_and_keeps_the_users() {
    let m = marker();
    let mut vm = FakeVm::from_values(
        100,
        json!({
            "tags": format!("mr-{UID};pve-operator;web"),
            "description": format!("Web server\n\n{}\n", m.description_line()),
            "smbios1": format!("uuid={UID}"),
            "name": "web-1",
        }),
    );
    let plan = release_marker(&m, &vm.view()).expect("release encodes");
    assert_eq!(plan.config.tags, vec!["web".to_owned()]);
    assert_eq!(plan.config.description.as_deref(), Some("Web server"));
    assert!(plan.delete.is_empty() && plan.resizes.is_empty());
    assert_eq!(plan.changed_keys(), ["description", "tags"]);
    vm.apply(&plan);
    let after = vm.view();
    assert!(!m.is_in_tags(&after.tags()));
    assert!(!m.is_in_description(after.get("description").unwrap_or_default()));
    assert_eq!(after.get("smbios1"), Some(format!("uuid={UID}").as_str()));
    assert!(
        release_marker(&m, &after).expect("encodes").is_empty(),
        "release is idempotent"
    );
}

#[test]
fn release_deletes_tags_and_description_that_only_held_the_marker() {
    let m = marker();
    let current = view(json!({
        "digest": "ab",
        "tags": format!("pve-operator;mr-{UID}"),
        "description": format!("{}\n", m.description_line()),
    }));
    let plan = release_marker(&m, &current).expect("release encodes");
    assert_eq!(plan.delete, ["tags", "description"]);
    assert_eq!(plan.update().deleted(), ["tags", "description"]);
    assert!(plan.has_config_changes());
    assert_eq!(plan.changed_keys(), ["description", "tags"]);
    let untouched = view(json!({"digest": "ab", "tags": "web", "description": "hello\n"}));
    assert!(
        release_marker(&m, &untouched)
            .expect("encodes")
            .is_in_sync()
    );
}
