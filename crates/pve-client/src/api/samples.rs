//! Test-only: every request the client can build, with representative arguments, and how its
//! response is decoded. The schema-conformance test checks each against the PVE 8.4 and 9.1 schemas.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::access::{
    Permissions, TokenInfo, UserInfo, permissions_request, user_request, user_token_request,
};
use super::cluster::{ClusterResource, NextId, ResourceType, nextid_request, resources_request};
use super::download::{
    Checksum, ChecksumAlgorithm, DownloadContent, DownloadUrl, download_url_request,
};
use super::mapping::{Mapping, MappingKind, mappings_request};
use super::nodes::{
    NetworkInterface, NetworkTypeFilter, NodeInfo, NodeStatus, StorageInfo, StorageStatus,
    StorageVolume, network_request, node_status_request, nodes_request, storage_content_request,
    storage_status_request, storages_request,
};
use super::qemu::{
    AgentNetworkInterfaces, CloneOptions, DeleteOptions, DiskSize, PendingEntry, PowerAction,
    QemuListEntry, QemuStatus, ShutdownOptions, StopOptions, VmConfigUpdate, agent_network_request,
    clone_request, config_request, create_request, delete_request, list_request, pending_request,
    power_request, resize_request, status_request, update_request,
};
use super::storage_content::delete_volume_request;
use super::tasks::{TaskListQuery, TaskSource};
use super::version::{Version, version_request};
use super::vmconfig::*;
use crate::client::{TicketData, ticket_request};
use crate::error::Result;
use crate::request::ApiRequest;
use crate::secret::Secret;
use crate::task::{TaskListEntry, TaskLogLine, TaskStatus, Upid};

/// A valid UPID for endpoints that return one.
pub(crate) const UPID: &str = "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:";

/// One buildable request and the decoder of its response.
pub(crate) struct Sample {
    pub req: ApiRequest,
    pub decode: fn(Value) -> Result<()>,
    /// The value to use where the schema returns a bare string (a UPID).
    pub string_example: Option<&'static str>,
}

fn dec<T: DeserializeOwned>(v: Value) -> Result<()> {
    crate::de::decode::<T>(v, "sample", b"").map(|_| ())
}

fn s(req: Result<ApiRequest>, decode: fn(Value) -> Result<()>) -> Sample {
    Sample {
        req: req.expect("sample request must build"),
        decode,
        string_example: None,
    }
}

fn task(req: Result<ApiRequest>, decode: fn(Value) -> Result<()>) -> Sample {
    Sample {
        string_example: Some(UPID),
        ..s(req, decode)
    }
}

/// A resize of VM 100's disk in `slot` (a task, or none when the size is already reached).
fn resize(slot: Result<DiskSlot>, size: DiskSize, digest: Option<&str>) -> Sample {
    let slot = slot.expect("slot");
    task(
        resize_request("pve", 100, slot, size, digest),
        dec::<Option<Upid>>,
    )
}

/// A configuration using every builder option.
pub(crate) fn full_config() -> VmConfig {
    VmConfig {
        name: Some("web-1".into()),
        cores: Some(2),
        sockets: Some(1),
        cpu: Some("host".into()),
        memory_mib: Some(4096),
        balloon_mib: Some(1024),
        scsihw: Some(ScsiHw::VirtioScsiSingle),
        efidisk: Some(EfiDisk {
            storage: "local-lvm".into(),
            efitype_4m: true,
            pre_enrolled_keys: Some(false),
        }),
        tpmstate: Some(TpmState {
            storage: "local-lvm".into(),
            version: TpmVersion::V2_0,
        }),
        pci_devices: [(
            0,
            PciDevice {
                mdev: Some("nvidia-63".into()),
                pcie: Some(true),
                rombar: Some(false),
                primary_gpu: Some(true),
                ..PciDevice::mapped("gpu_a")
            },
        )]
        .into(),
        usb_devices: [(
            1,
            UsbDevice {
                usb3: Some(true),
                ..UsbDevice::mapped("yubikey")
            },
        )]
        .into(),
        ciuser: Some("omni".into()),
        cipassword: Some(Secret::new("pw")),
        sshkeys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs user@host".into()],
        nameservers: vec![
            "192.0.2.53".parse().expect("ip"),
            "2001:db8::53".parse().expect("ip"),
        ],
        searchdomain: Some("example.com".into()),
        boot_order: vec!["scsi0".into(), "ide2".into(), "net0".into()],
        ostype: Some("l26".into()),
        agent: Some(AgentConfig {
            enabled: true,
            fstrim_cloned_disks: Some(true),
        }),
        bios: Some(Bios::Ovmf),
        machine: Some("q35".into()),
        tags: vec!["pve-operator".into(), "uid-0f3c".into()],
        description: Some("managed by pve-operator\nuid: 0f3c".into()),
        smbios_uuid: Some("0f3c5b1e-1111-2222-3333-444455556666".into()),
        onboot: Some(true),
        pool: None,
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::scsi(0).expect("slot"),
        Drive::Disk(
            Disk::new("local-lvm", 32.0)
                .ssd(true)
                .discard(true)
                .iothread(true)
                .cache(CacheMode::Writeback)
                .backup(true),
        ),
    )
    .drive(
        DiskSlot::virtio(1).expect("slot"),
        Drive::Disk(Disk::new("ceph", 1.5).iothread(true)),
    )
    .drive(
        DiskSlot::sata(0).expect("slot"),
        Drive::Disk(Disk::existing("local-lvm:vm-100-disk-3")),
    )
    .drive(
        DiskSlot::sata(1).expect("slot"),
        Drive::Disk(Disk::import("local-lvm", "local:import/debian.qcow2")),
    )
    .drive(
        DiskSlot::ide(2).expect("slot"),
        Drive::CdromIso("local:iso/debian-12.iso".into()),
    )
    .drive(DiskSlot::ide(3).expect("slot"), Drive::CdromEmpty)
    .drive(
        DiskSlot::ide(0).expect("slot"),
        Drive::CloudInit {
            storage: "local-lvm".into(),
        },
    )
    .nic(
        0,
        Nic::new(NicModel::Virtio, "vmbr0").tag(10).firewall(true),
    )
    .nic(
        1,
        Nic {
            mtu: Some(1500),
            link_down: Some(false),
            ..Nic::new(NicModel::E1000, "vmbr1").macaddr("BC:24:11:2E:3F:40")
        },
    )
    .ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Static {
                cidr: "192.0.2.10/24".into(),
                gateway: Some("192.0.2.1".parse().expect("ip")),
            }),
            ipv6: Some(Ipv6Config::Static {
                cidr: "2001:db8::10/64".into(),
                gateway: Some("2001:db8::1".parse().expect("ip")),
            }),
        },
    )
    .ipconfig(
        1,
        IpConfig {
            ipv4: Some(Ipv4Config::Dhcp),
            ipv6: Some(Ipv6Config::Dhcp),
        },
    )
}

/// Every request the client can build.
pub(crate) fn all() -> Vec<Sample> {
    let upid: Upid = UPID.parse().expect("upid");
    let with_pool = VmConfig {
        pool: Some("team-a".into()),
        ..full_config()
    };
    let update = VmConfigUpdate::set(&full_config())
        .and_then(|u| u.delete(["net2", "ide1"]))
        .and_then(|u| u.revert(["cores"]))
        .and_then(|u| u.digest("5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1"))
        .expect("a valid update");
    let stop = StopOptions {
        timeout: Some(60),
        overrule_shutdown: Some(true),
    };
    let shutdown = ShutdownOptions {
        timeout: Some(120),
        force_stop: Some(true),
    };
    let clone_full = CloneOptions {
        newid: 101,
        name: Some("clone-1".into()),
        full: true,
        storage: Some("local-lvm".into()),
        target: Some("pve2".into()),
        pool: Some("team-a".into()),
        description: Some("clone".into()),
    };
    let clone_linked = CloneOptions {
        full: false,
        storage: None,
        target: None,
        pool: None,
        description: None,
        ..clone_full.clone()
    };
    let mut v = vec![
        s(Ok(version_request()), dec::<Version>),
        s(Ok(nodes_request()), dec::<Vec<NodeInfo>>),
        s(node_status_request("pve"), dec::<NodeStatus>),
        s(
            storages_request("pve", Some("images"), true),
            dec::<Vec<StorageInfo>>,
        ),
        s(
            storages_request("pve", Some("iso,vztmpl"), false),
            dec::<Vec<StorageInfo>>,
        ),
        s(
            storage_content_request("pve", "local", Some("iso"), Some(100)),
            dec::<Vec<StorageVolume>>,
        ),
        s(
            storage_status_request("pve", "local-lvm"),
            dec::<StorageStatus>,
        ),
        s(
            network_request("pve", Some(NetworkTypeFilter::AnyBridge)),
            dec::<Vec<NetworkInterface>>,
        ),
        s(
            network_request("pve", Some(NetworkTypeFilter::Bridge)),
            dec::<Vec<NetworkInterface>>,
        ),
        s(
            network_request("pve", Some(NetworkTypeFilter::AnyLocalBridge)),
            dec::<Vec<NetworkInterface>>,
        ),
        s(Ok(resources_request(None)), dec::<Vec<ClusterResource>>),
        s(nextid_request(None), dec::<NextId>),
        s(nextid_request(Some(200)), dec::<NextId>),
        s(list_request("pve"), dec::<Vec<QemuListEntry>>),
        task(create_request("pve", 100, &with_pool, true), dec::<Upid>),
        task(
            create_request("pve", 100, &VmConfig::default(), false),
            dec::<Upid>,
        ),
        s(config_request("pve", 100, false), dec::<VmConfigView>),
        s(config_request("pve", 100, true), dec::<VmConfigView>),
        task(
            update_request("pve", 100, &update, false),
            dec::<Option<Upid>>,
        ),
        s(
            update_request("pve", 100, &update, true),
            dec::<Option<Value>>,
        ),
        s(pending_request("pve", 100), dec::<Vec<PendingEntry>>),
        s(status_request("pve", 100), dec::<QemuStatus>),
        resize(DiskSlot::scsi(0), DiskSize::GrowGib(10), Some("5b2c")),
        resize(DiskSlot::virtio(1), DiskSize::AbsoluteGib(64), None),
        task(clone_request("pve", 9000, &clone_full), dec::<Upid>),
        task(clone_request("pve", 9000, &clone_linked), dec::<Upid>),
        task(
            delete_request("pve", 100, DeleteOptions::default()),
            dec::<Upid>,
        ),
        s(
            agent_network_request("pve", 100),
            dec::<AgentNetworkInterfaces>,
        ),
        s(permissions_request(None, None), dec::<Permissions>),
        s(user_request("omni@pve"), dec::<UserInfo>),
        s(
            user_token_request("omni@pve", "omni-provider"),
            dec::<TokenInfo>,
        ),
        s(
            permissions_request(Some("/vms/100"), Some("omni@pve!omni-provider")),
            dec::<Permissions>,
        ),
        s(super::tasks::status_request(&upid), dec::<TaskStatus>),
        s(
            super::tasks::log_request(&upid, 0, 50),
            dec::<Vec<TaskLogLine>>,
        ),
        s(
            super::tasks::list_request(
                "pve",
                &TaskListQuery {
                    vmid: Some(100),
                    typefilter: Some("qmcreate".into()),
                    errors: Some(true),
                    source: Some(TaskSource::Active),
                    limit: Some(10),
                    since: Some(1_700_000_000),
                    userfilter: None,
                },
            ),
            dec::<Vec<TaskListEntry>>,
        ),
        s(
            Ok(ticket_request("omni@pve", &Secret::new("pw"))),
            dec::<TicketData>,
        ),
    ];
    for kind in [MappingKind::Pci, MappingKind::Usb] {
        v.push(s(Ok(mappings_request(kind)), dec::<Vec<Mapping>>));
    }
    for (content, filename, checksum) in [
        (
            DownloadContent::Import,
            "debian-12.qcow2",
            Some(Checksum {
                algorithm: ChecksumAlgorithm::Sha512,
                hex: "ab".repeat(64),
            }),
        ),
        (DownloadContent::Iso, "talos-1.9.iso", None),
    ] {
        let d = DownloadUrl {
            url: format!("https://images.example.com/{filename}"),
            filename: filename.into(),
            content,
            checksum,
            verify_certificates: Some(true),
        };
        v.push(task(download_url_request("pve", "local", &d), dec::<Upid>));
    }
    v.push(task(
        delete_volume_request("pve", "local", "local:import/debian-12.qcow2"),
        dec::<Upid>,
    ));
    for kind in [
        ResourceType::Vm,
        ResourceType::Storage,
        ResourceType::Node,
        ResourceType::Sdn,
    ] {
        v.push(s(
            Ok(resources_request(Some(kind))),
            dec::<Vec<ClusterResource>>,
        ));
    }
    for action in [
        PowerAction::Start,
        PowerAction::Stop,
        PowerAction::Shutdown,
        PowerAction::Reboot,
        PowerAction::Reset,
    ] {
        v.push(task(
            power_request("pve", 100, action, &stop, &shutdown),
            dec::<Upid>,
        ));
    }
    v
}
