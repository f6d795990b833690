//! `create_config`, `clone_options` and `vm_name` for each boot source and example shape.

use std::collections::BTreeMap;

use pve_client::api::vmconfig::encode_sshkeys;
use pve_operator_api::MachineRequest;

use super::fixtures::*;
use crate::vmspec::{SpecError, vm_name};

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn marker_line() -> String {
    format!("pve-operator: MachineRequest default/web-1 uid={UID}")
}

#[test]
fn small_iso_vm_sends_exactly_the_expected_parameters_with_the_marker() {
    let c = create_config(&small_iso(), &marker(), "web-1").expect("valid spec");
    let tags = format!("pve-operator;mr-{UID}");
    let smbios = format!("uuid={UID}");
    let line = marker_line();
    assert_eq!(
        params(&c),
        expected(&[
            ("name", "web-1"),
            ("cores", "2"),
            ("sockets", "1"),
            ("memory", "2048"),
            ("scsihw", "virtio-scsi-single"),
            ("ostype", "l26"),
            ("scsi0", "local-lvm:32,discard=on,iothread=1,ssd=1"),
            (
                "ide2",
                "local:iso/debian-12.7.0-amd64-netinst.iso,media=cdrom"
            ),
            ("net0", "model=virtio,bridge=vmbr0"),
            ("boot", "order=scsi0;ide2"),
            ("bios", "seabios"),
            ("tags", &tags),
            ("description", &line),
            ("smbios1", &smbios),
            ("onboot", "0"),
        ])
    );
    assert_eq!(c.pool, None);
}

#[test]
fn network_boot_vm_boots_from_its_first_nic_then_its_disk_and_keeps_the_fixed_mac() {
    let c = create_config(&stopped_pxe(), &marker(), "pxe-1").expect("valid spec");
    let p = params(&c);
    assert_eq!(p["boot"], "order=net0;virtio0");
    assert_eq!(p["net0"], "e1000=BC:24:11:AA:BB:CC,bridge=vmbr0");
    assert_eq!(p["virtio0"], "local-lvm:8");
    assert_eq!(p["memory"], "1024");
    assert!(!p.contains_key("ide2"), "no CD-ROM for network boot: {p:?}");
}

#[test]
fn multi_disk_multi_nic_vm_puts_the_cloud_init_drive_beside_the_iso() {
    let c = create_config(&multi_disk_multi_nic(), &marker(), "db-1").expect("valid spec");
    let p = params(&c);
    assert_eq!(p["scsi0"], "local-lvm:32,iothread=1");
    assert_eq!(p["scsi1"], "local-lvm:100,cache=writeback");
    assert_eq!(p["sata0"], "local:10,ssd=1");
    assert_eq!(
        p["ide2"],
        "local:iso/ubuntu-24.04-live-server-amd64.iso,media=cdrom"
    );
    assert_eq!(
        p["ide0"], "local-lvm:cloudinit,media=cdrom",
        "first disk's storage"
    );
    assert_eq!(p["net0"], "model=virtio,bridge=vmbr0,firewall=1");
    assert_eq!(p["net1"], "model=vmxnet3,bridge=vmbr1,tag=100");
    assert_eq!(p["ipconfig0"], "ip=dhcp");
    assert_eq!(p["ipconfig1"], "ip=10.0.100.5/24");
    assert_eq!(p["sockets"], "2");
    assert_eq!(p["balloon"], "4096");
    assert_eq!(p["onboot"], "1");
    assert_eq!(p["boot"], "order=scsi0;ide2");
    assert!(!p.contains_key("ciuser") && !p.contains_key("sshkeys"));
    assert_eq!(c.pool.as_deref(), Some("team-a"));
}

#[test]
fn ovmf_vm_gets_an_efi_disk_with_4m_vars_and_the_machine_type() {
    let c = create_config(&ovmf(), &marker(), "uefi-1").expect("valid spec");
    let p = params(&c);
    assert_eq!(p["bios"], "ovmf");
    assert_eq!(p["machine"], "q35");
    assert_eq!(p["efidisk0"], "local-lvm:1,efitype=4m,pre-enrolled-keys=1");
}

#[test]
fn cloud_init_keys_are_url_encoded_and_the_description_keeps_the_user_text_first() {
    let mut s = small_iso();
    s.cloud_init = cloud_init_template().cloud_init;
    s.description = Some("Web server\n".into());
    s.tags = vec!["web".into(), "PVE-OPERATOR".into()];
    let c = create_config(&s, &marker(), "web-1").expect("valid spec");
    let p = params(&c);
    let keys = [cloud_init_template().cloud_init.expect("ci").ssh_keys[0].clone()];
    assert_eq!(p["sshkeys"], encode_sshkeys(&keys).expect("key encodes"));
    assert!(p["sshkeys"].contains("%20") && !p["sshkeys"].contains(' '));
    assert_eq!(p["ciuser"], "debian");
    assert_eq!(p["ipconfig0"], "ip=192.0.2.10/24,gw=192.0.2.1");
    assert_eq!(p["nameserver"], "192.0.2.53");
    assert_eq!(p["searchdomain"], "example.com");
    assert_eq!(p["ide0"], "local-lvm:cloudinit,media=cdrom");
    assert_eq!(p["description"], format!("Web server\n\n{}", marker_line()));
    assert_eq!(
        p["tags"],
        format!("pve-operator;mr-{UID};web"),
        "a user tag equal to the managed tag is not repeated"
    );
}

#[test]
fn template_boot_source_is_cloned_with_the_marker_in_the_description() {
    let s = cloud_init_template();
    let err = create_config(&s, &marker(), "web-1").expect_err("templates are cloned");
    assert_eq!(err.field(), "spec.boot.template");
    let o = clone_options(&s, &marker(), "web-1", 123).expect("valid spec");
    assert_eq!(o.newid, 123);
    assert_eq!(o.name.as_deref(), Some("web-1"));
    assert!(o.full);
    assert_eq!(o.storage, None);
    assert_eq!(o.target, None);
    assert_eq!(
        o.description.as_deref(),
        Some(format!("Web server\n\n{}", marker_line()).as_str())
    );
    let mut linked = s.clone();
    linked.pool = Some("team-a".into());
    if let Some(t) = linked.boot.template.as_mut() {
        t.full = false;
    }
    let o = clone_options(&linked, &marker(), "web-1", 124).expect("valid spec");
    assert!(!o.full);
    assert_eq!(o.pool.as_deref(), Some("team-a"));
}

#[test]
fn clone_options_refuse_a_spec_without_template_and_a_linked_clone_with_storage() {
    let err = clone_options(&small_iso(), &marker(), "web-1", 123).expect_err("no template");
    assert_eq!(err.field(), "spec.boot");
    let mut s = cloud_init_template();
    if let Some(t) = s.boot.template.as_mut() {
        t.full = false;
        t.storage = Some("local-lvm".into());
    }
    let err = clone_options(&s, &marker(), "web-1", 123).expect_err("linked with storage");
    assert_eq!(err.field(), "spec.boot.template.storage");
    let err = clone_options(&cloud_init_template(), &marker(), "web-1", 5).expect_err("vmid");
    assert!(err.to_string().contains("newid"), "{err}");
}

fn field_of(result: Result<pve_client::api::vmconfig::VmConfig, SpecError>) -> String {
    let err = result.expect_err("spec is refused");
    err.field().to_owned()
}

#[test]
fn contradictory_specs_are_refused_with_messages_naming_the_field() {
    let m = marker();
    let mut s = small_iso();
    s.disks
        .push(serde_yaml::from_str("{slot: ide2, storage: local-lvm, sizeGiB: 1}").expect("disk"));
    let err = create_config(&s, &m, "x").expect_err("ide2 is the ISO's");
    assert_eq!(
        err.to_string(),
        "spec.disks[1].slot ide2 is taken by the ISO CD-ROM (spec.boot.iso)"
    );

    let mut s = small_iso();
    s.disks.push(s.disks[0].clone());
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.disks[1].slot");

    let mut s = small_iso();
    s.disks[0].slot = "virtio0".into();
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.disks[0].ssd");

    let mut s = small_iso();
    s.disks[0].slot = "sata0".into();
    s.disks[0].ssd = false;
    assert_eq!(
        field_of(create_config(&s, &m, "x")),
        "spec.disks[0].iothread"
    );

    let mut s = stopped_pxe();
    s.networks.clear();
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.networks");

    let mut s = small_iso();
    s.disks.clear();
    s.cloud_init = Some(Default::default());
    assert_eq!(
        field_of(create_config(&s, &m, "x")),
        "spec.cloudInit.storage"
    );

    let mut s = small_iso();
    s.cloud_init = cloud_init_template().cloud_init;
    if let Some(ci) = s.cloud_init.as_mut() {
        ci.ip_configs[0].interface = "net3".into();
    }
    assert_eq!(
        field_of(create_config(&s, &m, "x")),
        "spec.cloudInit.ipConfigs[0].interface"
    );

    let mut s = small_iso();
    s.boot.network = Some(Default::default());
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.boot");

    let mut s = ovmf();
    s.firmware.efi_disk = None;
    assert_eq!(
        field_of(create_config(&s, &m, "x")),
        "spec.firmware.efiDisk"
    );
}

#[test]
fn property_string_injection_is_refused_by_the_encoder_and_named_by_spec_field() {
    let m = marker();
    let mut s = small_iso();
    s.networks[0].bridge = "vmbr0,tag=5".into();
    let err = create_config(&s, &m, "x").expect_err("injection");
    assert!(
        matches!(&err, SpecError::Rejected { field, proxmox_key, .. }
            if field == "spec.networks[0]" && proxmox_key == "net0.bridge"),
        "{err:?}"
    );

    let mut s = small_iso();
    s.disks[0].storage = "local-lvm,backup=0".into();
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.disks[0]");

    let mut s = small_iso();
    s.tags = vec!["ok;evil".into()];
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.tags");

    let mut s = small_iso();
    s.description = Some("line\u{7}bell".into());
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.description");

    let mut s = small_iso();
    s.cpu.cpu_type = Some("host,flags=+pcid".into());
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.cpu.type");

    let mut s = small_iso();
    s.boot.iso = Some(pve_operator_api::IsoBoot {
        volume: "local:iso/x.iso,media=disk".into(),
    });
    assert_eq!(field_of(create_config(&s, &m, "x")), "spec.boot.iso.volume");
}

#[test]
fn vm_name_prefers_spec_vm_name_and_sanitises_to_a_dns_name() {
    let mut mr = MachineRequest::new("web-1", small_iso());
    assert_eq!(vm_name(&mr), "web-1");
    mr.spec.vm_name = Some("frontend.example.com".into());
    assert_eq!(vm_name(&mr), "frontend.example.com");
    mr.spec.vm_name = None;
    mr.metadata.name = Some(format!("-a_b..c-{}", "x".repeat(80)));
    let name = vm_name(&mr);
    assert!(name.starts_with("a-b.c-x"), "{name}");
    assert_eq!(name.len(), 63);
    assert!(
        pve_client::api::validate_dns_name("name", &name).is_ok(),
        "{name}"
    );
    mr.metadata.name = Some("___".into());
    assert_eq!(vm_name(&mr), "vm");
}

#[test]
fn ssh_keys_that_would_break_cloud_init_yaml_are_refused_naming_the_key() {
    let m = marker();
    let good = cloud_init_template().cloud_init.expect("ci").ssh_keys[0].clone();
    let body = good.split(' ').nth(1).expect("key data").to_owned();
    for (bad, says) in [
        (
            format!("ssh-ed25519 {body} a\u{2028}runcmd: [id]"),
            "U+2028",
        ),
        (format!("ssh-ed25519 {body} a\u{85}b"), "U+0085"),
        (format!("ssh-ed25519 {body} a\u{0}b"), "U+0000"),
        (format!("ssh-ed25519 {body} key: value"), "': '"),
        (format!("ssh-ed25519 {body} trailing:"), "':'"),
        (format!("ssh-ed25519 {body} a #b"), "'#'"),
        (format!("ssh-rsa {body} a"), "\"ssh-ed25519\""),
        ("ssh-ed25519 AAAA".to_owned(), "truncated"),
    ] {
        let mut s = small_iso();
        s.cloud_init = cloud_init_template().cloud_init;
        if let Some(ci) = s.cloud_init.as_mut() {
            ci.ssh_keys.push(bad.clone());
        }
        let err = create_config(&s, &m, "x").expect_err("refused");
        assert_eq!(err.field(), "spec.cloudInit.sshKeys[1]", "{bad:?}: {err}");
        assert!(err.to_string().contains(says), "{bad:?}: {err}");
    }
}

/// What admission alone may let through (a stored object from before a pattern, or a value
/// only the encoder refuses) is refused by `check_encodes` on both boot paths, before anything
/// is recorded, naming the field.
#[test]
fn check_encodes_refuses_on_both_boot_paths_what_the_encoders_refuse_naming_the_field() {
    let split_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEC AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";
    let clone_without_disks = spec(
        r"
memory: {sizeMiB: 1024}
boot: {template: {vmid: 9000}}
cloudInit: {user: debian}
",
    );
    for good in [
        small_iso(),
        cloud_init_template(),
        stopped_pxe(),
        multi_disk_multi_nic(),
        ovmf(),
        clone_without_disks.clone(),
    ] {
        check_encodes(&good, &marker(), "web-1").expect("a valid spec encodes");
    }
    for base in [small_iso(), clone_without_disks] {
        let hostile: [(&str, serde_json::Value); 4] = [
            (
                "spec.cloudInit.sshKeys[0]",
                serde_json::json!({ "cloudInit": { "sshKeys": [split_key] } }),
            ),
            (
                "spec.description",
                serde_json::json!({ "description": "notes\rpve-operator: x" }),
            ),
            ("spec.tags", serde_json::json!({ "tags": ["a,b=c"] })),
            (
                "spec.cpu.type",
                serde_json::json!({ "cpu": { "type": "host,flags=+aes" } }),
            ),
        ];
        for (field, change) in hostile {
            let mut value = serde_json::to_value(&base).expect("spec");
            if let (Some(value), Some(change)) = (value.as_object_mut(), change.as_object()) {
                value.extend(change.clone());
            }
            let spec: crate::vmspec::MachineRequestSpec =
                serde_json::from_value(value).expect("spec");
            let error = check_encodes(&spec, &marker(), "web-1").expect_err("refused");
            assert_eq!(error.field(), field, "{error}");
        }
    }
}

/// The create call sends the parameters `Desired::new` encoded while checking the spec: the
/// same as encoding the create config again, and refused for a template boot source.
#[test]
fn the_create_sends_what_was_encoded_when_the_spec_was_checked() {
    let m = marker();
    for spec in [small_iso(), stopped_pxe(), multi_disk_multi_nic(), ovmf()] {
        let desired = crate::vmspec::Desired::new(&spec, &m, "web-1").expect("valid spec");
        let again = desired
            .create_config()
            .expect("config")
            .encode()
            .expect("encodes");
        assert_eq!(desired.create_params().expect("a created VM"), &again);
    }
    let clone = crate::vmspec::Desired::new(&cloud_init_template(), &m, "web-1").expect("valid");
    assert!(
        clone.create_params().is_err(),
        "a template is cloned, not created"
    );
}

/// Below the schema's minimum (only a stored object from before admission could hold it), the
/// client's one bound refuses it, and the error names the spec field.
#[test]
fn zero_cores_or_sockets_are_refused_naming_the_spec_field() {
    for (cores, sockets, field) in [(0, 1, "spec.cpu.cores"), (2, 0, "spec.cpu.sockets")] {
        let mut spec = small_iso();
        spec.cpu.cores = cores;
        spec.cpu.sockets = sockets;
        let error = crate::vmspec::Desired::new(&spec, &marker(), "web-1").expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains(field) && text.contains("below the minimum of 1"),
            "{text}"
        );
    }
}
