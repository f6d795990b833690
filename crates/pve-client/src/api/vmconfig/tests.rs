use super::*;
use crate::error::Result;
use crate::request::Params;

/// The samples' configuration with every builder option, less what this file's exact parameter
/// map leaves out (the cloud-init password, the imported disk, the empty CD-ROM, the NIC's MTU
/// and link state), with another CPU, pre-enrolled EFI keys, a pool and other IPv6 settings.
fn full() -> VmConfig {
    let mut cfg = VmConfig {
        cpu: Some("x86-64-v2-AES".into()),
        efidisk: Some(EfiDisk {
            storage: "local-lvm".into(),
            efitype_4m: true,
            pre_enrolled_keys: Some(true),
        }),
        cipassword: None,
        pool: Some("team-a".into()),
        ..crate::api::samples::full_config()
    };
    for slot in [DiskSlot::sata(1).unwrap(), DiskSlot::ide(3).unwrap()] {
        cfg.drives.remove(&slot);
    }
    if let Some(Drive::Disk(scsi0)) = cfg.drives.get_mut(&DiskSlot::scsi(0).unwrap()) {
        scsi0.backup = None;
    }
    let net1 = cfg.nics.get_mut(&1).unwrap();
    (net1.mtu, net1.link_down) = (None, None);
    cfg.ipconfigs.get_mut(&0).unwrap().ipv6 = Some(Ipv6Config::Auto);
    cfg.ipconfigs.get_mut(&1).unwrap().ipv6 = None;
    cfg
}

fn as_map(p: &Params) -> BTreeMap<String, String> {
    p.iter().map(|(k, v)| (k.to_owned(), v.wire())).collect()
}

#[test]
fn a_full_config_produces_the_exact_parameter_map() {
    let p = as_map(&full().to_params().unwrap());
    let want: BTreeMap<String, String> = [
        ("name", "web-1"),
        ("cores", "2"),
        ("sockets", "1"),
        ("cpu", "x86-64-v2-AES"),
        ("memory", "4096"),
        ("balloon", "1024"),
        ("scsihw", "virtio-scsi-single"),
        (
            "scsi0",
            "local-lvm:32,cache=writeback,discard=on,iothread=1,ssd=1",
        ),
        ("virtio1", "ceph:1.5,iothread=1"),
        ("sata0", "local-lvm:vm-100-disk-3"),
        ("ide0", "local-lvm:cloudinit,media=cdrom"),
        ("ide2", "local:iso/debian-12.iso,media=cdrom"),
        ("efidisk0", "local-lvm:1,efitype=4m,pre-enrolled-keys=1"),
        ("tpmstate0", "local-lvm:1,version=v2.0"),
        (
            "hostpci0",
            "mapping=gpu_a,mdev=nvidia-63,pcie=1,rombar=0,x-vga=1",
        ),
        ("usb1", "mapping=yubikey,usb3=1"),
        ("net0", "model=virtio,bridge=vmbr0,tag=10,firewall=1"),
        ("net1", "e1000=BC:24:11:2E:3F:40,bridge=vmbr1"),
        ("ciuser", "omni"),
        ("sshkeys", "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs%20user%40host"),
        ("ipconfig0", "ip=192.0.2.10/24,gw=192.0.2.1,ip6=auto"),
        ("ipconfig1", "ip=dhcp"),
        ("nameserver", "192.0.2.53 2001:db8::53"),
        ("searchdomain", "example.com"),
        ("boot", "order=scsi0;ide2;net0"),
        ("ostype", "l26"),
        ("agent", "enabled=1,fstrim_cloned_disks=1"),
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("tags", "pve-operator;uid-0f3c"),
        ("description", "managed by pve-operator\nuid: 0f3c"),
        ("smbios1", "uuid=0f3c5b1e-1111-2222-3333-444455556666"),
        ("onboot", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(p, want);
    assert!(
        !p.contains_key("pool"),
        "pool is a create parameter, not a config key"
    );
}

#[test]
fn sshkeys_are_url_encoded_like_encode_uri_component() {
    let keys = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs user@host",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBJJxagPSUBxjewEkpZvwCqAmdhpe/Y91LM9L/2ms5QTVzh+GiH26A/bCJjwr7zZ+PwOKWPnjlgOtw6Hxd42xRI= bob's key (work)",
    ];
    assert_eq!(
        encode_sshkeys(&keys).unwrap(),
        "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs%20user%40host%0Aecdsa-sha2-nistp256%20AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBJJxagPSUBxjewEkpZvwCqAmdhpe%2FY91LM9L%2F2ms5QTVzh%2BGiH26A%2FbCJjwr7zZ%2BPwOKWPnjlgOtw6Hxd42xRI%3D%20bob's%20key%20(work)"
    );
    // What PVE's `urlencoded` format accepts: ^[-%a-zA-Z0-9_.!~*'()]*$
    let enc = encode_sshkeys(&keys).unwrap();
    assert!(
        enc.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-%_.!~*'()".contains(c))
    );
    assert!(encode_sshkeys(&["not a key"]).is_err());
    assert!(encode_sshkeys(&["ssh-ed25519 AAAA\nssh-rsa BBBB"]).is_err());
    // A comment that would inject a second YAML item or a mapping into cloud-init's user-data.
    for evil in [
        format!("{} x\u{2028}runcmd: [id]", &keys[0][..80]),
        format!("{} x\u{85}- ssh-rsa AAAA", &keys[0][..80]),
        format!("{} key: value", &keys[0][..80]),
    ] {
        match encode_sshkeys(&[keys[0], evil.as_str()]) {
            Err(PveError::InvalidInput { field, .. }) => {
                assert_eq!(field, "sshkeys[1]", "{evil:?}")
            }
            other => panic!("{evil:?} was accepted: {other:?}"),
        }
    }
}

/// The field that [`VmConfig::to_params`] names in refusing the default config after `edit`.
fn field_refused(edit: impl FnOnce(&mut VmConfig)) -> String {
    let mut cfg = VmConfig::default();
    edit(&mut cfg);
    field_of(cfg.to_params())
}

fn field_of(r: Result<Params>) -> String {
    match r {
        Err(PveError::InvalidInput { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn injection_attempts_are_refused_with_the_field_name() {
    let nic = |bridge: &str| {
        VmConfig::new()
            .nic(0, Nic::new(NicModel::Virtio, bridge))
            .to_params()
    };
    assert_eq!(field_of(nic("vmbr0,tag=5")), "net0.bridge");
    assert_eq!(field_of(nic("vmbr0\nnet1=e1000")), "net0.bridge");
    let mac = VmConfig::new()
        .nic(
            0,
            Nic::new(NicModel::Virtio, "vmbr0").macaddr("BC:24:11:00:00:01,firewall=0"),
        )
        .to_params();
    assert_eq!(field_of(mac), "net0.virtio");
    let iso = VmConfig::new()
        .drive(
            DiskSlot::ide(2).unwrap(),
            Drive::CdromIso("local:iso/x.iso,media=disk".into()),
        )
        .to_params();
    assert_eq!(field_of(iso), "ide2.file");
    let storage = VmConfig::new()
        .drive(
            DiskSlot::scsi(0).unwrap(),
            Drive::Disk(Disk::new("local-lvm:vm-1;x", 8.0)),
        )
        .to_params();
    assert_eq!(field_of(storage), "scsi0.storage");
    let import = VmConfig::new()
        .drive(
            DiskSlot::scsi(0).unwrap(),
            Drive::Disk(Disk::import("local-lvm", "local:x,size=1")),
        )
        .to_params();
    assert_eq!(field_of(import), "scsi0.import-from");
    assert_eq!(
        field_refused(|c| c.cpu = Some("host,flags=+pcid".into())),
        "cpu.cputype"
    );
    assert_eq!(
        field_refused(|c| c.tags = vec!["ok".into(), "bad;tag".into()]),
        "tags"
    );
    assert_eq!(field_refused(|c| c.name = Some("web 1".into())), "name");
    let ip = VmConfig::new().ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Static {
                cidr: "10.0.0.1/24,gw=10.0.0.254".into(),
                gateway: None,
            }),
            ipv6: None,
        },
    );
    assert_eq!(field_of(ip.to_params()), "ipconfig0.ip");
    assert_eq!(
        field_refused(|c| c.boot_order = vec!["scsi0;net0".into()]),
        "boot.order"
    );
    assert_eq!(
        field_refused(
            |c| c.smbios_uuid = Some("0f3c5b1e-1111-2222-3333-444455556666,serial=x".into())
        ),
        "smbios1.uuid"
    );
    assert_eq!(
        field_refused(|c| c.ciuser = Some("root\nx".into())),
        "ciuser"
    );
}

#[test]
fn bus_specific_options_and_ranges_are_checked() {
    assert!(DiskSlot::scsi(31).is_err());
    assert!(DiskSlot::virtio(16).is_err());
    assert!(DiskSlot::sata(6).is_err());
    assert!(DiskSlot::ide(4).is_err());
    let ssd_on_virtio = VmConfig::new().drive(
        DiskSlot::virtio(0).unwrap(),
        Drive::Disk(Disk::new("local-lvm", 8.0).ssd(true)),
    );
    assert_eq!(field_of(ssd_on_virtio.to_params()), "virtio0.ssd");
    let iothread_on_sata = VmConfig::new().drive(
        DiskSlot::sata(0).unwrap(),
        Drive::Disk(Disk::new("local-lvm", 8.0).iothread(true)),
    );
    assert_eq!(field_of(iothread_on_sata.to_params()), "sata0.iothread");
    let zero = VmConfig::new().drive(
        DiskSlot::scsi(0).unwrap(),
        Drive::Disk(Disk::new("local-lvm", 0.0)),
    );
    assert_eq!(field_of(zero.to_params()), "scsi0");
    let two_ci = VmConfig::new()
        .drive(
            DiskSlot::ide(0).unwrap(),
            Drive::CloudInit {
                storage: "a1".into(),
            },
        )
        .drive(
            DiskSlot::ide(1).unwrap(),
            Drive::CloudInit {
                storage: "a1".into(),
            },
        );
    assert_eq!(field_of(two_ci.to_params()), "drives");
    assert_eq!(field_refused(|c| c.memory_mib = Some(8)), "memory");
    assert_eq!(field_refused(|c| c.ostype = Some("linux".into())), "ostype");
    assert_eq!(DiskSlot::parse("scsi10").unwrap().to_string(), "scsi10");
    assert!(DiskSlot::parse("scsi01").is_err());
    assert!(DiskSlot::parse("nvme0").is_err());
}

#[test]
fn nic_round_trips_through_the_form_proxmox_returns() {
    let nic = Nic::parse("virtio=BC:24:11:2E:3F:40,bridge=vmbr0,firewall=1,tag=10").unwrap();
    assert_eq!(nic.model, NicModel::Virtio);
    assert_eq!(nic.macaddr.as_deref(), Some("BC:24:11:2E:3F:40"));
    assert_eq!(nic.bridge, "vmbr0");
    assert_eq!(nic.tag, Some(10));
    assert_eq!(nic.firewall, Some(true));
    let encoded = nic.encode(0).unwrap();
    assert_eq!(
        encoded,
        "virtio=BC:24:11:2E:3F:40,bridge=vmbr0,tag=10,firewall=1"
    );
    assert_eq!(Nic::parse(&encoded).unwrap(), nic);
    let plain = Nic::parse("model=e1000,bridge=vmbr1").unwrap();
    assert_eq!(plain.model, NicModel::E1000);
    assert_eq!(plain.macaddr, None);
    assert!(Nic::parse("bridge=vmbr0").is_err());
}

#[test]
fn config_view_decodes_a_real_8_3_capture() {
    let v: VmConfigView = serde_json::from_str(
        r#"{"digest":"5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1","smbios1":"uuid=0f3c5b1e-1111-2222-3333-444455556666","scsihw":"virtio-scsi-single","ostype":"l26","cpu":"x86-64-v2-AES","cores":2,"scsi0":"local-lvm:vm-106-disk-0,iothread=1,size=32G","sockets":1,"memory":"2048","net0":"virtio=BC:24:11:2E:3F:40,bridge=vmbr0,firewall=1","ide2":"none,media=cdrom","tags":"pve-operator;uid-0f3c","numa":0,"meta":"creation-qemu=9.0.2,ctime=1733000000","vmgenid":"x","boot":"order=scsi0;ide2;net0"}"#,
    )
    .unwrap();
    assert_eq!(v.digest, "5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1");
    assert_eq!(v.memory_mib(), Some(2048));
    assert_eq!(v.get_u64("cores"), Some(2));
    assert_eq!(v.tags(), ["pve-operator", "uid-0f3c"]);
    assert_eq!(
        v.smbios_uuid().as_deref(),
        Some("0f3c5b1e-1111-2222-3333-444455556666")
    );
    assert_eq!(v.nics()[&0].bridge, "vmbr0");
    let drives = v.drives();
    assert_eq!(
        drives[&DiskSlot::scsi(0).unwrap()],
        ("local-lvm:vm-106-disk-0".to_owned(), Some("32G".to_owned()))
    );
    assert_eq!(v.lock(), None);
    let creating: VmConfigView =
        serde_json::from_str(r#"{"digest":"abc","lock":"create"}"#).unwrap();
    assert_eq!(creating.lock(), Some("create"));
    let current: VmConfigView =
        serde_json::from_str(r#"{"digest":"x","memory":"current=4096"}"#).unwrap();
    assert_eq!(current.memory_mib(), Some(4096));
}

/// The default config with the cloud-init password `pw`.
fn with_cipassword(pw: &str) -> VmConfig {
    VmConfig {
        cipassword: Some(Secret::new(pw)),
        ..VmConfig::default()
    }
}

#[test]
fn cloud_init_user_and_password_cannot_change_the_user_data_yaml() {
    for evil in [
        "root\u{2028}runcmd",
        "[root]",
        "{a: b}",
        "*alias",
        "&anchor",
        "!!binary",
        "#x",
        "a: b",
        "Root",
        "-x",
        "a\u{200b}b",
        "",
        "a_very_long_user_name_of_33_chars",
    ] {
        let refused = field_refused(|c| c.ciuser = Some(evil.into()));
        assert_eq!(refused, "ciuser", "{evil:?}");
    }
    for ok in ["debian", "_svc", "ci-user2"] {
        let c = VmConfig {
            ciuser: Some(ok.into()),
            ..VmConfig::default()
        };
        assert!(c.to_params().is_ok(), "{ok:?}");
    }
    for evil in [
        "$6$salt$hash\u{2028}runcmd: [id]",
        "$6$salt$hash: x",
        "$6$salt$hash #x",
        "plain\u{85}text",
        "a\u{feff}",
        "",
    ] {
        match with_cipassword(evil).to_params() {
            Err(e @ PveError::InvalidInput { .. }) => {
                assert!(e.to_string().contains("cipassword"), "{e}");
                assert!(evil.len() < 4 || !e.to_string().contains(evil), "{e}");
            }
            other => panic!("{evil:?}: {other:?}"),
        }
    }
    for ok in [
        "correct horse: battery #1",
        "$6$rounds=5000$salt$abc./XYZ",
        "$y$j9T$salt$hash",
    ] {
        assert!(with_cipassword(ok).to_params().is_ok(), "{ok:?}");
    }
}

#[test]
fn machine_types_are_those_of_the_pve_schema() {
    // Found by the vmconfig_schema fuzz target: `vmi` passed the old prefix check, and PVE's
    // schema refused it with a 400 only once the request was sent.
    let with = |m: &str| {
        VmConfig {
            machine: Some(m.into()),
            ..VmConfig::default()
        }
        .to_params()
    };
    for ok in [
        "pc",
        "q35",
        "virt",
        "pc-q35-8.1",
        "pc-i440fx-9.0+pve1",
        "pc-8.1.2.pxe",
        "pc-q35-8.1+pve0.pxe",
        "virt-9.0",
        "virt+pve1",
        "virt-9.2+pve1",
    ] {
        assert!(with(ok).is_ok(), "{ok}");
    }
    for bad in [
        "vmi",
        "pc-8",
        "q35-8.1",
        "pc-q35-",
        "pc-q35-8.1+pve",
        "virt-9.0.pxe",
        "pc-q35-8.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1",
        "pc-q35-8.1,viommu=intel",
    ] {
        assert_eq!(field_of(with(bad)), "machine", "{bad}");
    }
}

#[test]
fn cores_and_sockets_are_held_to_the_schemas_minimum_and_nothing_more() {
    for (cores, sockets, ok) in [(1, 1, true), (4096, 64, true), (0, 1, false), (2, 0, false)] {
        let config = VmConfig {
            cores: Some(cores),
            sockets: Some(sockets),
            ..VmConfig::default()
        };
        let result = config.to_params();
        assert_eq!(
            result.is_ok(),
            ok,
            "cores {cores}, sockets {sockets}: {result:?}"
        );
        if let Err(error) = result {
            assert!(
                error.to_string().contains("below the minimum of 1"),
                "{error}"
            );
        }
    }
}

// Reading drives, sizes and SSH keys as `GET .../config` returns them.

#[test]
fn sizes_read_in_every_unit_proxmox_writes() {
    assert_eq!(parse_size_bytes("32G"), Some(32 << 30));
    assert_eq!(parse_size_bytes("512M"), Some(512 << 20));
    assert_eq!(parse_size_bytes("4M"), Some(4 << 20));
    assert_eq!(parse_size_bytes("1T"), Some(1 << 40));
    assert_eq!(parse_size_bytes("528K"), Some(528 << 10));
    assert_eq!(parse_size_bytes("10737418240"), Some(10 << 30));
    assert_eq!(parse_size_bytes("2.5G"), Some(5 << 29));
    assert_eq!(parse_size_bytes("G"), None);
    assert_eq!(parse_size_bytes("lots"), None);
}

#[test]
fn drives_are_classified_as_disk_cd_rom_or_cloud_init_drive() {
    let disk =
        DriveView::parse("local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G").expect("drive");
    assert_eq!(disk.storage(), Some("local-lvm"));
    assert!(!disk.is_cdrom() && !disk.is_cloudinit());
    assert!(disk.discard() && disk.flag("iothread") && !disk.flag("ssd"));
    assert_eq!(disk.cache(), "none");
    let linked =
        DriveView::parse("local-lvm:base-9000-disk-0/vm-101-disk-0,size=2G").expect("drive");
    assert_eq!(linked.storage(), Some("local-lvm"));
    for ci in [
        "local-lvm:vm-100-cloudinit,media=cdrom",
        "local:100/vm-100-cloudinit.qcow2,media=cdrom",
    ] {
        let v = DriveView::parse(ci).expect("drive");
        assert!(v.is_cdrom() && v.is_cloudinit(), "{ci}");
    }
    let iso = DriveView::parse("local:iso/debian-12.iso,media=cdrom").expect("drive");
    assert!(iso.is_cdrom() && !iso.is_cloudinit());
    let file_key = DriveView::parse("file=local-lvm:vm-100-disk-0,size=8G").expect("drive");
    assert_eq!(file_key.volume, "local-lvm:vm-100-disk-0");
}

#[test]
fn ssh_keys_decode_from_any_percent_encoding_into_trimmed_lines() {
    assert_eq!(
        decode_sshkeys("ssh-ed25519%20AAAA%2b%2F%3D%20a%40b%0A%0d%0Assh-rsa%20BBBB%20c"),
        ["ssh-ed25519 AAAA+/= a@b", "ssh-rsa BBBB c"]
    );
    assert_eq!(
        decode_sshkeys("100%25%zz"),
        ["100%%zz"],
        "bad escapes stay as they are"
    );
    assert!(decode_sshkeys("").is_empty());
}

#[test]
fn an_import_is_a_zero_sized_new_disk_with_its_source() {
    let p = as_map(
        &VmConfig::new()
            .drive(
                DiskSlot::scsi(0).unwrap(),
                Drive::Disk(
                    Disk::import("local-lvm", "local:import/debian-12.qcow2").iothread(true),
                ),
            )
            .to_params()
            .unwrap(),
    );
    assert_eq!(
        p["scsi0"],
        "local-lvm:0,import-from=local:import/debian-12.qcow2,iothread=1"
    );
}
