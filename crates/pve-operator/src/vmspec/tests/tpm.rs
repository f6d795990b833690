//! The TPM state (`spec.firmware.tpmState` ⇄ `tpmstate0`): created with the VM, added to a VM
//! that has none, and never moved or re-versioned.

use pve_operator_api::machine_request::{Bios, TpmVersion};

use super::fixtures::*;

#[test]
fn a_uefi_vm_with_a_tpm_gets_tpmstate0_on_its_storage_with_the_version() {
    let c = create_config(&ovmf_with_tpm(), &marker(), "win-1").expect("valid spec");
    assert_eq!(params(&c)["tpmstate0"], "local-lvm:1,version=v2.0");
    let mut v12 = ovmf_with_tpm();
    v12.firmware.tpm_state.as_mut().expect("tpm").version = TpmVersion::V1_2;
    let c = create_config(&v12, &marker(), "win-1").expect("valid spec");
    assert_eq!(params(&c)["tpmstate0"], "local-lvm:1,version=v1.2");
}

#[test]
fn a_tpm_without_uefi_is_refused_before_anything_is_sent() {
    let mut spec = ovmf_with_tpm();
    spec.firmware.bios = Bios::SeaBIOS;
    spec.firmware.efi_disk = None;
    let e = check_encodes(&spec, &marker(), "win-1").expect_err("refused");
    assert!(e.to_string().contains("spec.firmware.tpmState"), "{e}");
}

#[test]
fn a_missing_tpm_is_added_and_a_moved_or_other_version_tpm_is_a_conflict() {
    let spec = ovmf_with_tpm();
    let plain = ovmf();
    let mut vm = FakeVm::create(
        100,
        &create_config(&plain, &marker(), "win-1").expect("valid spec"),
    );
    let p = plan_update(&spec, &marker(), "win-1", &vm.view()).expect("plan");
    assert_eq!(p.changed_keys(), ["tpmstate0"]);
    vm.apply(&p);
    assert_eq!(
        vm.values["tpmstate0"],
        "local-lvm:vm-100-disk-2,size=4M,version=v2.0"
    );
    let again = plan_update(&spec, &marker(), "win-1", &vm.view()).expect("plan");
    assert!(again.is_in_sync(), "{again:?}");

    vm.values
        .insert("tpmstate0".into(), "ceph:vm-100-disk-9,size=4M".into());
    let p = plan_update(&spec, &marker(), "win-1", &vm.view()).expect("plan");
    assert!(p.is_empty(), "nothing is changed: {p:?}");
    assert_eq!(p.conflicts.len(), 2, "{:?}", p.conflicts);
    assert!(
        p.conflicts[0]
            .starts_with("spec.firmware.tpmState.storage is local-lvm but tpmstate0 is on ceph")
    );
    assert!(
        p.conflicts[1].contains("tpmstate0 in Proxmox is v1.2"),
        "an absent version is Proxmox's default: {:?}",
        p.conflicts
    );
}
