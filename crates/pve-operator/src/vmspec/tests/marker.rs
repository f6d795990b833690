//! The identity marker: tags, description line, SMBIOS uuid, and its release.

use pve_operator_api::MachineRequest;
use serde_json::json;

use super::fixtures::*;
use crate::vmspec::{Marker, create_config, plan_update, release_marker};

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
    assert_eq!(
        Marker::uid_from_tags(&["pve-operator", upper.as_str()]),
        Some(UID.to_owned())
    );
    assert_eq!(Marker::uid_from_tags(&["pve-operator", "web", "mr-"]), None);
    assert_eq!(Marker::uid_from_tags(&[]), None);
}

#[test]
fn a_config_is_ours_by_tag_or_description_line_or_smbios_uuid_alone() {
    let m = marker();
    let by_tag = view(json!({"digest": "ab", "tags": format!("mr-{UID};web")}));
    let by_line = view(json!({
        "digest": "ab",
        "description": format!("notes\n\n{}\n", m.description_line()),
    }));
    let by_smbios =
        view(json!({"digest": "ab", "smbios1": format!("uuid={}", UID.to_uppercase())}));
    let foreign = view(json!({
        "digest": "ab",
        "tags": "pve-operator;mr-11111111-2222-3333-4444-555555555555",
        "description": "pve-operator: MachineRequest default/web-1 uid=11111111-2222-3333-4444-555555555555\n",
        "smbios1": "uuid=11111111-2222-3333-4444-555555555555",
    }));
    assert!(m.is_in_config(&by_tag));
    assert!(m.is_in_config(&by_line));
    assert!(m.is_in_config(&by_smbios));
    assert!(!m.is_in_config(&foreign));
    assert!(!m.is_in_config(&view(json!({"digest": "ab"}))));
    assert_eq!(
        Marker::uid_from_description(&format!("x\n{}\n", m.description_line())),
        Some(UID.to_owned())
    );
    let prefix_only = format!("pve-operator: MachineRequest default/web-1 uid={UID}0");
    assert!(!m.is_in_description(&prefix_only));
}

const OTHER: &str = "11111111-2222-3333-4444-555555555555";

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
    let other = Marker::new(OTHER, "team-b", "db");
    assert!(!other.is_in_config(&vm.view()));
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
    assert!(!other.is_in_config(&vm.view()));
    assert!(m.is_in_tags(&vm.view().tags()));
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
    let plan = release_marker(&m, &vm.view());
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
        release_marker(&m, &after).is_empty(),
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
    let plan = release_marker(&m, &current);
    assert_eq!(plan.delete, ["tags", "description"]);
    assert!(plan.has_config_changes());
    assert_eq!(plan.changed_keys(), ["description", "tags"]);
    let untouched = view(json!({"digest": "ab", "tags": "web", "description": "hello\n"}));
    assert!(release_marker(&m, &untouched).is_in_sync());
}
