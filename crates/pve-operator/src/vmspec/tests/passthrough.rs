//! PCI and USB passthrough (`spec.pciDevices` ⇄ `hostpciN`, `spec.usbDevices` ⇄ `usbN`): by
//! mapping, on create and as drift; unlisted devices of a created VM are removed.

use serde_json::json;

use super::fixtures::*;

fn with_devices() -> pve_operator_api::MachineRequestSpec {
    let mut s = small_iso();
    s.firmware.machine = Some("q35".into());
    s.pci_devices = vec![
        serde_json::from_value(json!({"mapping": "gpu_a", "pcie": true, "primaryGpu": true}))
            .expect("device"),
        serde_json::from_value(json!({"mapping": "vgpu", "rombar": false, "mdev": "nvidia-63"}))
            .expect("device"),
    ];
    s.usb_devices =
        vec![serde_json::from_value(json!({"mapping": "key", "usb3": true})).expect("device")];
    s
}

#[test]
fn devices_are_created_by_mapping_with_only_the_options_that_differ_from_the_defaults() {
    let c = create_config(&with_devices(), &marker(), "gpu-1").expect("valid spec");
    let p = params(&c);
    assert_eq!(p["hostpci0"], "mapping=gpu_a,pcie=1,x-vga=1");
    assert_eq!(p["hostpci1"], "mapping=vgpu,mdev=nvidia-63,rombar=0");
    assert_eq!(p["usb0"], "mapping=key,usb3=1");
}

#[test]
fn a_device_is_added_changed_or_removed_and_the_plan_settles() {
    let spec = with_devices();
    let mut vm = FakeVm::create(
        100,
        &create_config(&small_iso(), &marker(), "gpu-1").expect("valid spec"),
    );
    vm.values.insert("machine".into(), "q35".into());
    vm.values.insert("usb3".into(), "host=1-2.3".into());
    vm.values
        .insert("hostpci4".into(), "host=0000:05:00.0,pcie=1".into());
    let p = plan_update(&spec, &marker(), "gpu-1", &vm.view()).expect("plan");
    assert_eq!(
        p.changed_keys(),
        ["hostpci0", "hostpci1", "hostpci4", "usb0", "usb3"],
        "two devices and a USB device added, the unlisted ones removed"
    );
    assert_eq!(p.delete, ["hostpci4", "usb3"]);
    vm.apply(&p);
    let again = plan_update(&spec, &marker(), "gpu-1", &vm.view()).expect("plan");
    assert!(again.is_in_sync(), "{again:?}");

    // Written in another order, with the defaults spelled out: the same device.
    vm.values.insert(
        "hostpci0".into(),
        "x-vga=1,rombar=1,pcie=1,mapping=gpu_a".into(),
    );
    let same = plan_update(&spec, &marker(), "gpu-1", &vm.view()).expect("plan");
    assert!(same.is_in_sync(), "{same:?}");

    // Another mapping, or a raw host device in its place: written again from the spec.
    for changed in [
        "mapping=gpu_b,pcie=1,x-vga=1",
        "host=0000:01:00.0,pcie=1,x-vga=1",
    ] {
        vm.values.insert("hostpci0".into(), changed.into());
        let p = plan_update(&spec, &marker(), "gpu-1", &vm.view()).expect("plan");
        assert_eq!(p.changed_keys(), ["hostpci0"], "{changed}");
        assert_eq!(
            params(&p.config)["hostpci0"],
            "mapping=gpu_a,pcie=1,x-vga=1"
        );
    }
}

#[test]
fn a_cloned_vm_keeps_its_templates_devices_until_the_spec_lists_some() {
    let spec = cloud_init_template();
    let template = FakeVm::from_values(
        9000,
        json!({"name": "tpl", "template": 1, "scsi0": "local-lvm:base-9000-disk-0,size=8G",
               "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0", "usb0": "mapping=dongle"}),
    );
    let vm = FakeVm::clone_of(
        &template,
        &clone_options(&spec, &marker(), "web-1", 101).expect("clone"),
    );
    let p = plan_update(&spec, &marker(), "web-1", &vm.view()).expect("plan");
    assert!(!p.changed_keys().contains(&"usb0".to_string()), "{p:?}");
    let mut listing = spec.clone();
    listing.usb_devices = vec![serde_json::from_value(json!({"mapping": "key"})).expect("device")];
    let p = plan_update(&listing, &marker(), "web-1", &vm.view()).expect("plan");
    assert_eq!(params(&p.config)["usb0"], "mapping=key");
}

#[test]
fn a_field_of_a_refused_device_names_its_list_entry() {
    let mut spec = with_devices();
    spec.pci_devices[1].mapping = "gpu_a".into();
    let e = check_encodes(&spec, &marker(), "gpu-1").expect_err("refused");
    assert!(e.to_string().contains("spec.pciDevices[1].mapping"), "{e}");
    let mut spec = with_devices();
    spec.usb_devices[0].mapping = "Key-1".into();
    let e = check_encodes(&spec, &marker(), "gpu-1").expect_err("refused");
    assert!(e.to_string().contains("spec.usbDevices[0]"), "{e}");
}
