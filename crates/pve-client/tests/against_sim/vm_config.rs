//! `VmConfig` options beyond the lifecycle test's: UEFI with an EFI disk, SATA and VirtIO disk
//! options, an empty CD-ROM, IPv6 and DHCP, several SSH keys, a cloud-init password and a pool
//! round-trip through create and GET config.

use pve_client::api::cluster::ResourceType;
use pve_client::api::vmconfig::{
    Bios, CacheMode, Disk, DiskSlot, Drive, EfiDisk, IpConfig, Ipv4Config, Ipv6Config, Nic,
    NicModel, VmConfig,
};
use pve_client::request::Method;

use crate::support::{Harness, NODE, SSH_KEY, create_and_wait, percent_decode};

const SSH_KEY_2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwE9KvaA54UMTs1cKEWCUiG5DMQeNSThIQU0upQWnrL second@example";

#[tokio::test]
async fn uefi_sata_empty_cdrom_ipv6_and_pool_options_round_trip() {
    let h = Harness::start().await;
    let root = h.root();
    Harness::raw(&root, Method::Post, "/pools", &[], &[("poolid", "team-a")])
        .await
        .expect("root creates a pool");
    let vm = VmConfig {
        name: Some("uefi-1".into()),
        memory_mib: Some(1024),
        bios: Some(Bios::Ovmf),
        machine: Some("q35".into()),
        efidisk: Some(EfiDisk {
            storage: "local-lvm".into(),
            efitype_4m: true,
            pre_enrolled_keys: Some(true),
        }),
        cipassword: Some(pve_client::Secret::new("cloud-init-pw")),
        sshkeys: vec![SSH_KEY.into(), SSH_KEY_2.into()],
        nameservers: vec![
            "192.0.2.53".parse().expect("ip"),
            "2001:db8::53".parse().expect("ip"),
        ],
        pool: Some("team-a".into()),
        onboot: Some(true),
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::sata(0).expect("sata0"),
        Drive::Disk(
            Disk::new("local-lvm", 4.5)
                .cache(CacheMode::Writeback)
                .backup(false),
        ),
    )
    .drive(
        DiskSlot::virtio(0).expect("virtio0"),
        Drive::Disk(Disk::new("local-lvm", 1.0).iothread(true).discard(true)),
    )
    .drive(DiskSlot::ide(2).expect("ide2"), Drive::CdromEmpty)
    .nic(0, Nic::new(NicModel::Vmxnet3, "vmbr1"))
    .ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Dhcp),
            ipv6: Some(Ipv6Config::Static {
                cidr: "2001:db8::10/64".into(),
                gateway: Some("2001:db8::1".parse().expect("ip")),
            }),
        },
    )
    .ipconfig(
        1,
        IpConfig {
            ipv4: None,
            ipv6: Some(Ipv6Config::Auto),
        },
    );
    create_and_wait(&root, 100, &vm).await;
    let cfg = root.qemu_config(NODE, 100).await.expect("config");
    assert_eq!(cfg.get("bios"), Some("ovmf"));
    assert_eq!(cfg.get("machine"), Some("q35"));
    assert_eq!(cfg.get("onboot"), Some("1"));
    assert_eq!(cfg.get("cipassword"), Some("**********"), "PVE masks it");
    assert_eq!(cfg.get("nameserver"), Some("192.0.2.53 2001:db8::53"));
    assert_eq!(cfg.get("ide2"), Some("none,media=cdrom"));
    assert_eq!(
        cfg.get("ipconfig0"),
        Some("ip=dhcp,ip6=2001:db8::10/64,gw6=2001:db8::1")
    );
    assert_eq!(cfg.get("ipconfig1"), Some("ip6=auto"));
    let keys = percent_decode(cfg.get("sshkeys").expect("sshkeys"));
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys, [SSH_KEY, SSH_KEY_2]);
    let efi = cfg.get("efidisk0").expect("efidisk0");
    assert!(
        efi.starts_with("local-lvm:vm-100-disk-") && efi.contains("efitype=4m"),
        "{efi}"
    );
    assert!(efi.contains("pre-enrolled-keys=1"), "{efi}");
    let sata = cfg.get("sata0").expect("sata0");
    for opt in ["backup=0", "cache=writeback", "size=4608M"] {
        assert!(sata.contains(opt), "{sata} has {opt}");
    }
    let virtio = cfg.get("virtio0").expect("virtio0");
    assert!(
        virtio.contains("iothread=1") && virtio.contains("discard=on"),
        "{virtio}"
    );
    assert_eq!(cfg.nics()[&0].model, NicModel::Vmxnet3);
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let entry = vms.iter().find(|r| r.vmid == Some(100)).expect("VM 100");
    assert_eq!(entry.pool.as_deref(), Some("team-a"));
    assert_eq!(entry.name.as_deref(), Some("uefi-1"));
    assert_eq!(entry.maxmem, Some(1024 << 20));
}
