//! `plan_update` for created VMs: idempotence against configs as Proxmox rewrites them, and
//! each kind of drift.

use pve_client::api::vmconfig::DiskSlot;
use pve_operator_api::machine_request::MachineRequestSpec;

use super::fixtures::*;
use crate::vmspec::UpdatePlan;

/// A VM created from `spec` the way Proxmox stores it.
fn created(spec: &MachineRequestSpec) -> FakeVm {
    FakeVm::create(
        100,
        &create_config(spec, &marker(), "web-1").expect("valid spec"),
    )
}

fn plan(spec: &MachineRequestSpec, vm: &FakeVm) -> UpdatePlan {
    plan_update(spec, &marker(), "web-1", &vm.view()).expect("valid spec")
}

/// Applies the plan and checks that planning again finds nothing to do.
fn apply_and_converge(spec: &MachineRequestSpec, vm: &mut FakeVm, p: &UpdatePlan) {
    vm.apply(p);
    let again = plan(spec, vm);
    assert!(again.is_empty(), "not idempotent: {again:?}");
}

fn set(vm: &mut FakeVm, key: &str, value: &str) {
    vm.values.insert(key.into(), value.into());
}

#[test]
fn a_freshly_created_vm_of_every_example_shape_is_in_sync() {
    for (name, spec) in [
        ("small ISO", small_iso()),
        ("stopped network boot", stopped_pxe()),
        ("multi-disk multi-NIC", multi_disk_multi_nic()),
        ("OVMF", ovmf()),
    ] {
        let vm = created(&spec);
        let p = plan(&spec, &vm);
        assert!(p.is_in_sync(), "{name}: {p:?}\nconfig: {:?}", vm.values);
    }
}

#[test]
fn proxmox_rewrites_are_not_drift() {
    let spec = multi_disk_multi_nic();
    let vm = created(&spec);
    assert!(
        vm.values["scsi0"].starts_with("local-lvm:vm-100-disk-0,"),
        "{:?}",
        vm.values
    );
    assert!(
        vm.values["net0"].starts_with("virtio=BC:24:11:"),
        "{:?}",
        vm.values
    );
    assert!(vm.values["ide0"].starts_with("local-lvm:vm-100-cloudinit,"));
    let mut vm = vm;
    // An update normalises tags (sorted, lower-cased, `;`); memory may read `current=`.
    set(&mut vm, "tags", &format!("mr-{UID};pve-operator"));
    set(&mut vm, "memory", "current=8192");
    assert!(plan(&spec, &vm).is_in_sync());
}

#[test]
fn cores_and_memory_changed_in_proxmox_are_set_back_and_nothing_else() {
    let spec = small_iso();
    let mut vm = created(&spec);
    set(&mut vm, "cores", "8");
    set(&mut vm, "memory", "4096");
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["cores", "memory"]);
    assert_eq!(p.config.cores, Some(2));
    assert_eq!(p.config.memory_mib, Some(2048));
    assert!(p.resizes.is_empty() && p.conflicts.is_empty() && p.delete.is_empty());
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn spec_changes_of_cpu_memory_and_flags_are_planned() {
    let mut spec = small_iso();
    let mut vm = created(&spec);
    spec.cpu.cores = 4;
    spec.cpu.cpu_type = Some("host".into());
    spec.memory.size_mib = 3072;
    spec.memory.balloon_mib = Some(0);
    spec.guest_agent = true;
    spec.start_on_boot = true;
    let p = plan(&spec, &vm);
    assert_eq!(
        p.changed_keys(),
        ["agent", "balloon", "cores", "cpu", "memory", "onboot"]
    );
    let sent = params(&p.config);
    assert_eq!(sent["agent"], "enabled=1");
    assert_eq!(sent["cpu"], "host");
    assert_eq!(sent["balloon"], "0");
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn omitted_optional_fields_delete_values_set_behind_our_back_on_a_created_vm() {
    let spec = small_iso();
    let mut vm = created(&spec);
    set(&mut vm, "cpu", "host,flags=+aes");
    set(&mut vm, "balloon", "512");
    set(&mut vm, "machine", "q35");
    set(&mut vm, "ciuser", "root");
    set(&mut vm, "ipconfig0", "ip=dhcp");
    let p = plan(&spec, &vm);
    let mut deleted = p.delete.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        ["balloon", "ciuser", "cpu", "ipconfig0", "machine"]
    );
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn a_disk_grown_in_spec_is_a_resize_not_a_config_change() {
    let mut spec = small_iso();
    let mut vm = created(&spec);
    spec.disks[0].size_gib = 64;
    let p = plan(&spec, &vm);
    assert_eq!(p.resizes, [(DiskSlot::scsi(0).expect("slot"), 64)]);
    assert!(p.changed_keys().is_empty() && p.conflicts.is_empty());
    assert!(!p.is_empty() && !p.has_config_changes());
    apply_and_converge(&spec, &mut vm, &p);
    assert!(vm.values["scsi0"].contains("size=64G"));
}

#[test]
fn a_fractional_or_byte_size_smaller_than_spec_is_grown() {
    let spec = small_iso();
    let mut vm = created(&spec);
    let v = vm.values["scsi0"].replace("size=32G", "size=31.5G");
    set(&mut vm, "scsi0", &v);
    assert_eq!(plan(&spec, &vm).resizes.len(), 1);
    let v = vm.values["scsi0"].replace("size=31.5G", "size=34359738368");
    set(&mut vm, "scsi0", &v);
    assert!(plan(&spec, &vm).is_in_sync(), "32 GiB in bytes equals 32G");
}

#[test]
fn a_disk_larger_in_proxmox_than_in_spec_is_a_conflict_never_a_shrink() {
    let spec = small_iso();
    let mut vm = created(&spec);
    let v = vm.values["scsi0"].replace("size=32G", "size=40G");
    set(&mut vm, "scsi0", &v);
    let p = plan(&spec, &vm);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(p.conflicts.len(), 1, "{:?}", p.conflicts);
    assert!(
        p.conflicts[0].starts_with("spec.disks[0].sizeGiB is 32 but scsi0 is 40G in Proxmox"),
        "{}",
        p.conflicts[0]
    );
}

#[test]
fn disks_on_another_storage_with_other_options_or_unlisted_are_conflicts() {
    let spec = multi_disk_multi_nic();
    let mut vm = created(&spec);
    set(
        &mut vm,
        "scsi1",
        "ceph:vm-100-disk-1,cache=writeback,size=100G",
    );
    set(
        &mut vm,
        "scsi0",
        "local-lvm:vm-100-disk-0,iothread=1,size=32G,ssd=1",
    );
    set(&mut vm, "virtio3", "local-lvm:vm-100-disk-7,size=1G");
    let p = plan(&spec, &vm);
    assert!(p.is_empty(), "nothing is changed for a conflict: {p:?}");
    let all = p.conflicts.join("\n");
    assert!(
        all.contains("spec.disks[1].storage is local-lvm but scsi1 is on ceph"),
        "{all}"
    );
    assert!(
        all.contains("spec.disks[0] (scsi0): ssd is false in spec but true in Proxmox"),
        "{all}"
    );
    assert!(all.contains("spec.disks has no virtio3"), "{all}");
    assert_eq!(p.conflicts.len(), 3, "{all}");
}

#[test]
fn a_spec_disk_in_a_slot_holding_a_cd_rom_is_a_conflict() {
    let mut spec = multi_disk_multi_nic();
    let mut vm = created(&spec);
    set(&mut vm, "sata1", "none,media=cdrom");
    spec.disks
        .push(serde_yaml::from_str("{slot: sata1, storage: local-lvm, sizeGiB: 5}").expect("disk"));
    let p = plan(&spec, &vm);
    assert_eq!(
        p.conflicts,
        ["spec.disks[3].slot sata1 is used by a CD-ROM drive in Proxmox"]
    );
    assert!(p.config.drives.is_empty());
}

#[test]
fn a_new_disk_in_spec_is_added_as_storage_and_size() {
    let mut spec = small_iso();
    let mut vm = created(&spec);
    spec.disks.push(
        serde_yaml::from_str("{slot: scsi1, storage: local-lvm, sizeGiB: 50, discard: true}")
            .expect("disk"),
    );
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["scsi1"]);
    assert_eq!(params(&p.config)["scsi1"], "local-lvm:50,discard=on");
    apply_and_converge(&spec, &mut vm, &p);
    assert!(vm.values["scsi1"].starts_with("local-lvm:vm-100-disk-1,discard=on,size=50G"));
}

#[test]
fn nic_bridge_or_vlan_changes_keep_the_mac_proxmox_generated() {
    let mut spec = small_iso();
    let mut vm = created(&spec);
    let mac = vm.values["net0"]
        .split(',')
        .next()
        .and_then(|m| m.strip_prefix("virtio="))
        .expect("generated MAC")
        .to_owned();
    // Changed in Proxmox: moved to another bridge.
    let moved = vm.values["net0"].replace("bridge=vmbr0", "bridge=vmbr9");
    set(&mut vm, "net0", &moved);
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["net0"]);
    assert_eq!(
        params(&p.config)["net0"],
        format!("virtio={mac},bridge=vmbr0")
    );
    apply_and_converge(&spec, &mut vm, &p);
    // Changed in spec: a VLAN and the firewall.
    spec.networks[0].vlan = Some(42);
    spec.networks[0].firewall = true;
    let p = plan(&spec, &vm);
    assert_eq!(
        params(&p.config)["net0"],
        format!("virtio={mac},bridge=vmbr0,tag=42,firewall=1")
    );
    apply_and_converge(&spec, &mut vm, &p);
    assert!(vm.values["net0"].starts_with(&format!("virtio={mac},")));
}

#[test]
fn a_fixed_mac_changed_in_proxmox_is_set_back() {
    let spec = stopped_pxe();
    let mut vm = created(&spec);
    set(&mut vm, "net0", "e1000=BC:24:11:00:00:01,bridge=vmbr0");
    let p = plan(&spec, &vm);
    assert_eq!(
        params(&p.config)["net0"],
        "e1000=BC:24:11:AA:BB:CC,bridge=vmbr0"
    );
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn a_nic_removed_from_spec_is_deleted_with_its_ip_config() {
    let mut spec = multi_disk_multi_nic();
    let mut vm = created(&spec);
    spec.networks.pop();
    if let Some(ci) = spec.cloud_init.as_mut() {
        ci.ip_configs.pop();
    }
    let p = plan(&spec, &vm);
    let mut deleted = p.delete.clone();
    deleted.sort();
    assert_eq!(deleted, ["ipconfig1", "net1"]);
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn tags_changed_in_proxmox_are_set_back_but_reordering_and_case_are_not_drift() {
    let mut spec = small_iso();
    spec.tags = vec!["Web".into(), "prod".into()];
    let mut vm = created(&spec);
    set(&mut vm, "tags", &format!("PROD;mr-{UID};pve-operator;web"));
    assert!(plan(&spec, &vm).is_in_sync());
    set(&mut vm, "tags", &format!("mr-{UID};pve-operator;web;extra"));
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["tags"]);
    assert_eq!(
        params(&p.config)["tags"],
        format!("pve-operator;mr-{UID};Web;prod")
    );
    apply_and_converge(&spec, &mut vm, &p);
    assert_eq!(vm.values["tags"], format!("mr-{UID};prod;pve-operator;web"));
}

#[test]
fn a_description_without_the_marker_line_is_rewritten() {
    let mut spec = small_iso();
    spec.description = Some("Web server".into());
    let mut vm = created(&spec);
    assert!(
        plan(&spec, &vm).is_in_sync(),
        "trailing newline is not drift"
    );
    set(&mut vm, "description", "Web server, edited by hand\n");
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["description"]);
    apply_and_converge(&spec, &mut vm, &p);
    assert_eq!(
        marker().ownership(&vm.view(), false),
        crate::vmspec::Ownership::Full
    );
}

#[test]
fn ssh_keys_round_trip_through_proxmox_url_encoding() {
    let mut spec = small_iso();
    spec.cloud_init = cloud_init_template().cloud_init;
    let key = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBJJxagPSUBxjewEkpZvwCqAmdhpe/Y91LM9L/2ms5QTVzh+GiH26A/bCJjwr7zZ+PwOKWPnjlgOtw6Hxd42xRI= admin@example.com";
    if let Some(ci) = spec.cloud_init.as_mut() {
        ci.ssh_keys = vec![key.into()];
    }
    let mut vm = created(&spec);
    assert!(
        vm.values["sshkeys"].contains("zZ%2BPw") && vm.values["sshkeys"].contains("%3D%20admin%40"),
        "{}",
        vm.values["sshkeys"]
    );
    assert!(plan(&spec, &vm).is_in_sync());
    // Written by another client: lower-case escapes and a trailing newline.
    let other = "ecdsa-sha2-nistp256%20AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBJJxagPSUBxjewEkpZvwCqAmdhpe%2fY91LM9L%2f2ms5QTVzh%2bGiH26A%2fbCJjwr7zZ%2bPwOKWPnjlgOtw6Hxd42xRI%3d%20admin%40example.com%0a";
    set(&mut vm, "sshkeys", other);
    assert!(plan(&spec, &vm).is_in_sync());
    if let Some(ci) = spec.cloud_init.as_mut() {
        ci.ssh_keys
            .push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwE9KvaA54UMTs1cKEWCUiG5DMQeNSThIQU0upQWnrL second@example.com".into());
    }
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["sshkeys"]);
    apply_and_converge(&spec, &mut vm, &p);
}

#[test]
fn a_boot_order_changed_in_proxmox_is_set_back_but_an_ejected_iso_is_not_drift() {
    let spec = small_iso();
    let mut vm = created(&spec);
    set(&mut vm, "ide2", "none,media=cdrom");
    assert!(plan(&spec, &vm).is_in_sync());
    set(&mut vm, "boot", "order=net0;scsi0");
    let p = plan(&spec, &vm);
    assert_eq!(p.config.boot_order, ["scsi0", "ide2"]);
    apply_and_converge(&spec, &mut vm, &p);
    // With the CD-ROM drive removed altogether, the order names only what exists.
    vm.values.remove("ide2");
    set(&mut vm, "boot", "order=net0");
    let p = plan(&spec, &vm);
    assert_eq!(p.config.boot_order, ["scsi0"]);
}

#[test]
fn a_lost_smbios_uuid_and_efi_disk_are_restored_and_a_moved_efi_disk_is_a_conflict() {
    let spec = ovmf();
    let mut vm = created(&spec);
    set(
        &mut vm,
        "smbios1",
        "uuid=7d3cc0a8-1111-2222-3333-444455556666",
    );
    vm.values.remove("efidisk0");
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["efidisk0", "smbios1"]);
    apply_and_converge(&spec, &mut vm, &p);
    set(
        &mut vm,
        "efidisk0",
        "ceph:vm-100-disk-5,efitype=4m,pre-enrolled-keys=1,size=4M",
    );
    let p = plan(&spec, &vm);
    assert!(p.is_empty());
    assert!(
        p.conflicts[0]
            .starts_with("spec.firmware.efiDisk.storage is local-lvm but efidisk0 is on ceph"),
        "{:?}",
        p.conflicts
    );
}

#[test]
fn every_planned_value_passes_the_client_encoder_and_changed_keys_match_the_parameters() {
    let mut spec = multi_disk_multi_nic();
    let vm = FakeVm::from_values(100, serde_json::json!({"memory": "512"}));
    spec.cloud_init = cloud_init_template().cloud_init;
    let p = plan(&spec, &vm);
    let sent: Vec<String> = params(&p.config).into_keys().collect();
    let mut keys = p.changed_keys();
    keys.retain(|k| !p.delete.contains(k));
    assert_eq!(sent, keys);
    assert!(sent.contains(&"scsi0".to_owned()) && sent.contains(&"tags".to_owned()));
}

#[test]
fn cloud_init_removed_from_spec_deletes_its_keys_and_drive() {
    let mut spec = multi_disk_multi_nic();
    let mut vm = created(&spec);
    spec.cloud_init = None;
    let p = plan(&spec, &vm);
    let mut deleted = p.delete.clone();
    deleted.sort();
    assert_eq!(deleted, ["ide0", "ipconfig0", "ipconfig1"]);
    apply_and_converge(&spec, &mut vm, &p);
    assert!(vm.values.contains_key("ide2"), "the ISO CD-ROM stays");
}

#[test]
fn an_ip_config_with_extra_ipv6_set_in_proxmox_is_set_back_to_the_spec() {
    let spec = multi_disk_multi_nic();
    let mut vm = created(&spec);
    set(&mut vm, "ipconfig1", "ip=10.0.100.5/24,ip6=auto");
    let p = plan(&spec, &vm);
    assert_eq!(p.changed_keys(), ["ipconfig1"]);
    assert_eq!(params(&p.config)["ipconfig1"], "ip=10.0.100.5/24");
    apply_and_converge(&spec, &mut vm, &p);
}
