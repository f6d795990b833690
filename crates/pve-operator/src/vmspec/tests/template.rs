//! `plan_update` right after a template clone: everything the spec says is added or set, what
//! the spec leaves open stays as the template has it, and the result converges.

use pve_client::api::vmconfig::DiskSlot;
use pve_operator_api::machine_request::MachineRequestSpec;
use serde_json::json;

use super::fixtures::*;
use crate::vmspec::{Marker, MarkerMismatch, Ownership, UpdatePlan};

/// A cloud image template as `qm template` leaves it, without a cloud-init drive.
fn template(extra: serde_json::Value) -> FakeVm {
    let mut values = json!({
        "name": "debian-12-cloud",
        "template": 1,
        "cores": 1,
        "memory": "1024",
        "cpu": "x86-64-v2-AES",
        "scsihw": "virtio-scsi-pci",
        "scsi0": "local-lvm:base-9000-disk-0,size=2G",
        "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
        "boot": "order=scsi0",
        "ostype": "l26",
        "serial0": "socket",
        "vga": "serial0",
        "agent": "1",
        "tags": "template",
        "smbios1": "uuid=12345678-aaaa-bbbb-cccc-1234567890ab",
    });
    if let (Some(m), Some(e)) = (values.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    FakeVm::from_values(9000, values)
}

fn cloned(spec: &MachineRequestSpec, template: &FakeVm) -> FakeVm {
    let opts = clone_options(spec, &marker(), "web-1", 101).expect("valid spec");
    FakeVm::clone_of(template, &opts)
}

fn plan(spec: &MachineRequestSpec, vm: &FakeVm) -> UpdatePlan {
    plan_update(spec, &marker(), "web-1", &vm.view()).expect("valid spec")
}

#[test]
fn the_clone_window_is_ours_only_at_the_recorded_vmid_and_the_first_update_completes_the_marker() {
    let spec = cloud_init_template();
    // The template carries another request's uid tag: the clone inherits it.
    let other = Marker::new("11111111-2222-3333-4444-555555555555", "team-b", "db");
    let t = template(json!({"tags": format!("template;{}", other.uid_tag())}));
    assert_eq!(marker().ownership(&t.view(), true), Ownership::Template);
    let mut vm = cloned(&spec, &t);
    let view = vm.view();
    assert!(!marker().is_in_tags(&view.tags()), "clone takes no tags");
    assert_eq!(marker().ownership(&view, true), Ownership::CloneWindow);
    assert_eq!(
        marker().ownership(&view, false),
        Ownership::Partial(MarkerMismatch::LineWithoutTag)
    );
    assert_eq!(
        other.ownership(&view, true),
        Ownership::Partial(MarkerMismatch::TagWithoutLine),
        "the inherited tag makes it nobody else's"
    );
    vm.apply(&plan(&spec, &vm));
    let view = vm.view();
    assert_eq!(marker().ownership(&view, false), Ownership::Full);
    assert_eq!(
        other.ownership(&view, true),
        Ownership::Absent,
        "inherited tag removed"
    );
    // A copy of the finished VM (a clone made in Proxmox) has a new SMBIOS uuid: not ours.
    let copy = FakeVm::clone_of(
        &vm,
        &clone_options(&spec, &marker(), "web-1", 102).expect("valid spec"),
    );
    assert_eq!(
        marker().ownership(&copy.view(), false),
        Ownership::Partial(MarkerMismatch::SmbiosMismatch)
    );
}

#[test]
fn after_a_clone_the_plan_sets_everything_the_spec_says_and_converges() {
    let spec = cloud_init_template();
    let mut vm = cloned(&spec, &template(json!({})));
    let p = plan(&spec, &vm);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    assert_eq!(
        p.changed_keys(),
        [
            "cores",
            "cpu",
            "ide2",
            "ipconfig0",
            "memory",
            "nameserver",
            "net0",
            "searchdomain",
            "sshkeys",
            "ciuser",
            "smbios1",
            "tags",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(p.resizes, [(DiskSlot::scsi(0).expect("slot"), 20)]);
    assert!(
        p.delete.is_empty(),
        "template values are kept: {:?}",
        p.delete
    );
    let sent = params(&p.config);
    assert_eq!(sent["ide2"], "local-lvm:cloudinit,media=cdrom");
    assert_eq!(sent["net0"], "virtio=BC:24:11:5E:7A:81,bridge=vmbr0,tag=20");
    assert_eq!(sent["cpu"], "host");
    vm.apply(&p);
    let again = plan(&spec, &vm);
    assert!(again.is_in_sync(), "{again:?}");
    let view = vm.view();
    assert!(marker().is_in_tags(&view.tags()));
    assert_eq!(view.get("serial0"), Some("socket"), "template extras stay");
    assert_eq!(view.get("scsihw"), Some("virtio-scsi-pci"));
    assert_eq!(view.get("boot"), Some("order=scsi0"));
}

#[test]
fn a_template_with_a_cloud_init_drive_gets_no_second_one() {
    let spec = cloud_init_template();
    let t = template(json!({"ide2": "local-lvm:vm-9000-cloudinit,media=cdrom"}));
    let mut vm = cloned(&spec, &t);
    let p = plan(&spec, &vm);
    assert!(
        !p.changed_keys()
            .iter()
            .any(|k| k.starts_with("ide") || k.starts_with("sata"))
    );
    vm.apply(&p);
    assert!(plan(&spec, &vm).is_in_sync());
}

#[test]
fn a_clone_without_spec_networks_or_cpu_type_keeps_the_templates() {
    let mut spec = cloud_init_template();
    spec.networks.clear();
    spec.cloud_init = None;
    spec.cpu.cpu_type = None;
    let mut vm = cloned(&spec, &template(json!({"ipconfig0": "ip=dhcp"})));
    let p = plan(&spec, &vm);
    assert!(p.delete.is_empty(), "{:?}", p.delete);
    assert!(!p.changed_keys().contains(&"net0".to_owned()));
    vm.apply(&p);
    assert!(plan(&spec, &vm).is_in_sync());
    assert_eq!(
        vm.values.get("cpu").map(String::as_str),
        Some("x86-64-v2-AES")
    );
    assert_eq!(
        vm.values.get("ipconfig0").map(String::as_str),
        Some("ip=dhcp")
    );
}

#[test]
fn additional_disks_are_added_beside_the_templates_disk() {
    let mut spec = cloud_init_template();
    spec.disks.push(
        serde_yaml::from_str("{slot: scsi1, storage: local-lvm, sizeGiB: 100, iothread: true}")
            .expect("disk"),
    );
    let mut vm = cloned(&spec, &template(json!({})));
    let p = plan(&spec, &vm);
    let sent = params(&p.config);
    assert_eq!(sent["scsi1"], "local-lvm:100,iothread=1");
    assert_eq!(
        sent["scsihw"], "virtio-scsi-single",
        "iothread on scsi needs it"
    );
    vm.apply(&p);
    assert!(plan(&spec, &vm).is_in_sync());
}

#[test]
fn a_template_disk_larger_than_spec_or_other_firmware_is_a_conflict() {
    let spec = cloud_init_template();
    let t = template(json!({
        "scsi0": "local-lvm:base-9000-disk-0,size=32G",
        "bios": "ovmf",
    }));
    let vm = cloned(&spec, &t);
    let p = plan(&spec, &vm);
    assert!(p.resizes.is_empty());
    let all = p.conflicts.join("\n");
    assert!(
        all.contains("spec.disks[0].sizeGiB is 20 but scsi0 is 32G"),
        "{all}"
    );
    assert!(
        all.contains("spec.firmware.bios is SeaBIOS but the VM cloned from the template uses ovmf"),
        "{all}"
    );
    assert!(!p.changed_keys().contains(&"bios".to_owned()));
}

#[test]
fn a_full_clone_to_another_storage_matches_a_spec_disk_on_that_storage() {
    let mut spec = cloud_init_template();
    if let Some(t) = spec.boot.template.as_mut() {
        t.storage = Some("ceph".into());
    }
    let vm = cloned(&spec, &template(json!({})));
    let p = plan(&spec, &vm);
    assert!(
        p.conflicts
            .iter()
            .any(|c| c.starts_with("spec.disks[0].storage is local-lvm but scsi0 is on ceph")),
        "{:?}",
        p.conflicts
    );
    spec.disks[0].storage = "ceph".into();
    assert!(plan(&spec, &vm).conflicts.is_empty());
}

#[test]
fn template_disk_options_the_spec_leaves_off_are_the_templates_but_options_it_asks_for_must_be_there()
 {
    let mut spec = cloud_init_template();
    let t = template(json!({"scsi0": "local-lvm:base-9000-disk-0,discard=on,iothread=1,size=2G"}));
    let mut vm = cloned(&spec, &t);
    let p = plan(&spec, &vm);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    vm.apply(&p);
    assert!(plan(&spec, &vm).is_in_sync());
    spec.disks[0].ssd = true;
    let p = plan(&spec, &vm);
    assert_eq!(
        p.conflicts,
        [
            "spec.disks[0] (scsi0): ssd is true in spec but false in Proxmox; the options of an \
          existing disk are set when it is added, change them in Proxmox or in the spec"
        ]
    );
}
