use serde_json::json;

use super::*;

fn spec(value: serde_json::Value) -> MachineRequestSpec {
    let mut base = json!({ "memory": { "sizeMiB": 512 }, "boot": { "network": {} } });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("spec")
}

fn allowances(value: serde_json::Value) -> Allowances {
    serde_json::from_value(value).expect("allowances")
}

fn identity(value: serde_json::Value) -> Policy {
    Policy::unrestricted().with_layer(
        Source("ProxmoxIdentity \"team-b\"".into()),
        allowances(value),
    )
}

fn refused(result: Result<(), Refusals>) -> Vec<String> {
    match result {
        Ok(()) => vec![],
        Err(r) => r.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn an_unrestricted_policy_refuses_nothing() {
    let s = spec(json!({
        "disks": [{ "slot": "scsi0", "storage": "anything", "sizeGiB": 1 }],
        "networks": [{ "name": "net0", "bridge": "vmbr9", "vlan": 42 }],
        "pool": "p", "placement": { "node": "n1" },
    }));
    assert!(Policy::unrestricted().check_spec(&s).is_ok());
    assert_eq!(Policy::unrestricted().vmid_range(), Ok(None));
    assert!(Policy::unrestricted().allows_vmid(100));
}

#[test]
fn every_storage_field_is_checked_and_named() {
    let policy = identity(json!({ "storages": ["local-lvm"] }));
    let s = spec(json!({
        "disks": [
            { "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 1 },
            { "slot": "scsi1", "storage": "ceph", "sizeGiB": 1 },
        ],
        "boot": { "iso": { "volume": "nfs:iso/x.iso" } },
        "cloudInit": { "storage": "cistore" },
        "firmware": { "bios": "OVMF", "efiDisk": { "storage": "efistore" } },
    }));
    let messages = refused(policy.check_spec(&s));
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("spec.disks[1].storage \"ceph\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.storages: local-lvm)"), "{messages:?}");
    for field in [
        "spec.boot.iso.volume",
        "spec.cloudInit.storage",
        "spec.firmware.efiDisk.storage",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(field)),
            "{field}: {messages:?}"
        );
    }
    let clone = spec(json!({ "boot": { "template": { "name": "t", "storage": "ceph" } } }));
    assert!(
        refused(policy.check_spec(&clone))[0].starts_with("spec.boot.template.storage \"ceph\"")
    );
}

#[test]
fn an_empty_list_allows_nothing_and_says_so() {
    let policy = identity(json!({ "pools": [] }));
    let messages = refused(policy.check_spec(&spec(json!({ "pool": "p" }))));
    assert_eq!(
        messages,
        [
            "spec.pool \"p\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.pools: none: the list is empty)"
        ]
    );
    assert!(
        policy.check_spec(&spec(json!({}))).is_ok(),
        "no pool used: nothing to refuse"
    );
}

#[test]
fn bridges_and_vlans_are_checked_per_nic() {
    let policy = identity(json!({ "bridges": [
        { "name": "vmbr0", "vlans": [{ "min": 100, "max": 199 }] },
        { "name": "vmbr1" },
    ] }));
    let ok = spec(json!({ "networks": [
        { "name": "net0", "bridge": "vmbr0", "vlan": 150 },
        { "name": "net1", "bridge": "vmbr1" },
        { "name": "net2", "bridge": "vmbr1", "vlan": 7 },
    ] }));
    assert!(policy.check_spec(&ok).is_ok());
    let bad = spec(json!({ "networks": [
        { "name": "net0", "bridge": "vmbr0", "vlan": 200 },
        { "name": "net1", "bridge": "vmbr0" },
        { "name": "net2", "bridge": "vmbr2" },
    ] }));
    let messages = refused(policy.check_spec(&bad));
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].starts_with("spec.networks[0].vlan 200 is not allowed"),
        "{messages:?}"
    );
    assert!(
        messages[0].contains("vmbr0 (VLAN 100-199), vmbr1 (untagged, any VLAN)"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("spec.networks[1].vlan (untagged, on bridge \"vmbr0\")"),
        "{messages:?}"
    );
    assert!(
        messages[2].starts_with("spec.networks[2].bridge \"vmbr2\""),
        "{messages:?}"
    );
}

#[test]
fn nodes_restrict_placement_and_intersect_over_layers() {
    let policy = identity(json!({ "nodes": ["n1", "n2"] })).with_layer(
        Source("ProxmoxCluster \"pve\"".into()),
        allowances(json!({ "nodes": ["n2", "n3"] })),
    );
    assert_eq!(policy.allowed_nodes(), Some(["n2".to_string()].into()));
    let messages = refused(policy.check_spec(&spec(
        json!({ "placement": { "allowedNodes": ["n2", "n1"] } }),
    )));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with(
            "spec.placement.allowedNodes[1] \"n1\" is not allowed by ProxmoxCluster \"pve\""
        ),
        "{messages:?}"
    );
    assert!(
        policy.check_node("spec.boot.template", "n3").is_err(),
        "the identity does not allow n3"
    );
}

#[test]
fn a_template_is_allowed_by_its_vmid_or_its_name_once_found() {
    let policy = identity(json!({ "templates": [{ "name": "debian-12" }, { "vmid": 9001 }] }));
    let by_name = spec(json!({ "boot": { "template": { "name": "debian-12" } } }));
    assert!(policy.check_spec(&by_name).is_ok());
    // Named by VMID while the list names templates by name: decided once the template is found.
    let by_vmid = spec(json!({ "boot": { "template": { "vmid": 9000 } } }));
    assert!(policy.check_spec(&by_vmid).is_ok());
    assert!(policy.check_template(9000, "debian-12", true).is_ok());
    let other = refused(policy.check_template(9002, "windows", true));
    assert_eq!(other.len(), 1);
    assert!(
        other[0].starts_with("spec.boot.template.vmid (template 9002, \"windows\") is not allowed"),
        "{other:?}"
    );
    let vmid_only = identity(json!({ "templates": [{ "vmid": 9001 }] }));
    let refused_literally =
        refused(vmid_only.check_spec(&spec(json!({ "boot": { "template": { "vmid": 9000 } } }))));
    assert!(
        refused_literally[0].starts_with("spec.boot.template.vmid 9000"),
        "{refused_literally:?}"
    );
}

#[test]
fn vmid_ranges_intersect_and_bound_what_is_touched() {
    let policy = identity(json!({ "vmidRange": { "min": 1000, "max": 1999 } })).with_layer(
        Source("ProxmoxCluster \"pve\"".into()),
        allowances(json!({ "vmidRange": { "min": 1500, "max": 2500 } })),
    );
    assert_eq!(
        policy.vmid_range(),
        Ok(Some(VmidRange {
            min: 1500,
            max: 1999
        }))
    );
    assert!(policy.allows_vmid(1500) && policy.allows_vmid(1999));
    assert!(!policy.allows_vmid(1499) && !policy.allows_vmid(2000));
    assert!(policy.check_recorded_vmid(1700).is_ok());
    let outside = refused(policy.check_recorded_vmid(2000));
    assert_eq!(
        outside,
        [
            "status.vmid 2000 (recorded earlier; the VM there is not touched) is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.vmidRange: 1000-1999)"
        ]
    );
    let disjoint = identity(json!({ "vmidRange": { "min": 1000, "max": 1099 } })).with_layer(
        Source("ProxmoxCluster \"pve\"".into()),
        allowances(json!({ "vmidRange": { "min": 2000, "max": 2099 } })),
    );
    assert!(disjoint.vmid_range().is_err());
}

#[test]
fn a_cluster_may_narrow_its_identity_but_never_widen_it() {
    let source = Source("ProxmoxIdentity \"team-b\"".into());
    let wide = allowances(json!({
        "storages": ["a", "b"], "nodes": ["n1"], "pools": ["p"],
        "templates": [{ "name": "t" }],
        "bridges": [{ "name": "vmbr0", "vlans": [{ "min": 10, "max": 20 }] }, { "name": "vmbr1" }],
        "vmidRange": { "min": 1000, "max": 1999 },
    }));
    let narrower = allowances(json!({
        "storages": ["b"], "nodes": [], "templates": [{ "name": "t" }],
        "bridges": [{ "name": "vmbr0", "vlans": [{ "min": 12, "max": 15 }] }, { "name": "vmbr1", "vlans": [{ "min": 5, "max": 5 }] }],
        "vmidRange": { "min": 1500, "max": 1600 },
    }));
    assert!(check_narrowing(&wide, &narrower, &source).is_ok());
    assert!(
        check_narrowing(&Allowances::default(), &narrower, &source).is_ok(),
        "an unrestricted identity can be narrowed any way"
    );
    let wider = allowances(json!({
        "storages": ["b", "c"], "pools": ["q"], "nodes": ["n2"],
        "templates": [{ "vmid": 9000 }],
        "bridges": [{ "name": "vmbr0", "vlans": [{ "min": 15, "max": 25 }] }, { "name": "vmbr0", "untagged": true, "vlans": [{ "min": 10, "max": 10 }] }, { "name": "vmbr2" }],
        "vmidRange": { "min": 900, "max": 1500 },
    }));
    let messages = refused(check_narrowing(&wide, &wider, &source));
    for field in [
        "spec.allowed.storages[1] \"c\"",
        "spec.allowed.pools[0] \"q\"",
        "spec.allowed.nodes[0] \"n2\"",
        "spec.allowed.templates[0] 9000",
        "spec.allowed.bridges[0]",
        "spec.allowed.bridges[1]",
        "spec.allowed.bridges[2]",
        "spec.allowed.vmidRange 900-1500",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(field)),
            "{field}: {messages:#?}"
        );
    }
    assert_eq!(messages.len(), 8, "{messages:#?}");
}

#[test]
fn passthrough_mappings_are_checked_per_device_and_a_cluster_only_narrows_them() {
    let s = spec(json!({
        "pciDevices": [{ "mapping": "gpu_a" }, { "mapping": "gpu_b" }],
        "usbDevices": [{ "mapping": "key" }],
    }));
    assert!(
        identity(json!({})).check_spec(&s).is_ok(),
        "omitted: no restriction"
    );
    let policy = identity(json!({ "pciMappings": ["gpu_a"], "usbMappings": [] }));
    assert_eq!(
        refused(policy.check_spec(&s)),
        [
            "spec.pciDevices[1].mapping \"gpu_b\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.pciMappings: gpu_a)",
            "spec.usbDevices[0].mapping \"key\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.usbMappings: none: the list is empty)",
        ]
    );
    let narrowed = policy.clone().with_layer(
        Source("ProxmoxCluster \"lab\"".into()),
        allowances(json!({ "pciMappings": ["gpu_b"] })),
    );
    let messages = refused(narrowed.check_spec(&s));
    assert!(
        messages.iter().any(|m| m.starts_with(
            "spec.pciDevices[0].mapping \"gpu_a\" is not allowed by ProxmoxCluster \"lab\""
        )),
        "{messages:#?}"
    );

    let source = Source("ProxmoxIdentity \"team-b\"".into());
    let wide = allowances(json!({ "pciMappings": ["gpu_a"], "usbMappings": ["key"] }));
    assert!(check_narrowing(&wide, &allowances(json!({ "pciMappings": [] })), &source).is_ok());
    let messages = refused(check_narrowing(
        &wide,
        &allowances(json!({ "pciMappings": ["gpu_a", "gpu_b"], "usbMappings": ["dongle"] })),
        &source,
    ));
    assert_eq!(
        messages,
        [
            "spec.allowed.pciMappings[1] \"gpu_b\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.pciMappings: gpu_a)",
            "spec.allowed.usbMappings[0] \"dongle\" is not allowed by ProxmoxIdentity \"team-b\" (spec.allowed.usbMappings: key)",
        ]
    );
}
