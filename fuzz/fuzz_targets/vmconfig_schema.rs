//! The client's VM configuration encoder against the PVE 8.4 schema: whatever
//! `VmConfig::to_params` accepts, the simulator's schema validation (the tables transcribed
//! from PVE's `POST /nodes/{node}/qemu`) accepts too, as the form body the client sends; and a
//! NIC that encodes decodes back to the same NIC (`Nic::encode` → `Nic::parse`).
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pve_client::Secret;
use pve_client::api::vmconfig::{
    AgentConfig, Bios, CacheMode, Disk, DiskBus, DiskSlot, Drive, EfiDisk, IpConfig, Ipv4Config,
    Ipv6Config, Nic, NicModel, OS_TYPES, ScsiHw, VmConfig,
};
use serde_json::Value;

/// A string: one of a few realistic values of the field, or anything.
#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Free(String),
}

impl Text {
    fn pick(&self, known: &[&str]) -> String {
        match self {
            Text::Known(i) => known[usize::from(*i) % known.len()].to_owned(),
            Text::Free(s) => s.clone(),
        }
    }
}

const STORAGES: &[&str] = &["local-lvm", "local", "ceph-pool", "nfs.store", "a1"];
const VOLUMES: &[&str] = &[
    "local:iso/debian-12.iso",
    "local-lvm:vm-100-disk-0",
    "local:100/vm-100-disk-0.qcow2",
    "nfs:import/disk.qcow2",
    "local:iso/../../x.iso",
];
const BRIDGES: &[&str] = &["vmbr0", "vmbr1", "vmbr0.10", "br_int", "vmbr-lan"];
const MACS: &[&str] = &[
    "BC:24:11:2E:3F:40",
    "bc:24:11:00:00:01",
    "02:00:00:00:00:01",
];

#[derive(Arbitrary, Debug)]
enum FSource {
    New { storage: Text, size_gib: f64 },
    Existing(Text),
    Import { storage: Text, from: Text },
}

#[derive(Arbitrary, Debug)]
enum FDrive {
    Disk {
        source: FSource,
        ssd: Option<bool>,
        discard: Option<bool>,
        iothread: Option<bool>,
        cache: Option<u8>,
        backup: Option<bool>,
    },
    CdromIso(Text),
    CdromEmpty,
    CloudInit(Text),
}

#[derive(Arbitrary, Debug)]
struct FNic {
    model: u8,
    bridge: Text,
    tag: Option<u16>,
    mac: Option<Text>,
    firewall: Option<bool>,
    mtu: Option<u16>,
    link_down: Option<bool>,
}

#[derive(Arbitrary, Debug)]
enum FIp4 {
    Dhcp,
    Static {
        cidr: Text,
        gateway: Option<Ipv4Addr>,
    },
}

#[derive(Arbitrary, Debug)]
enum FIp6 {
    Dhcp,
    Auto,
    Static {
        cidr: Text,
        gateway: Option<Ipv6Addr>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    name: Option<Text>,
    cores: Option<u32>,
    sockets: Option<u32>,
    cpu: Option<Text>,
    memory_mib: Option<u64>,
    balloon_mib: Option<u64>,
    scsihw: Option<u8>,
    drives: Vec<(u8, u8, FDrive)>,
    efidisk: Option<(Text, bool, Option<bool>)>,
    nics: Vec<(u8, FNic)>,
    ciuser: Option<Text>,
    cipassword: Option<String>,
    sshkeys: Vec<Text>,
    ipconfigs: Vec<(u8, Option<FIp4>, Option<FIp6>)>,
    nameservers: Vec<IpAddr>,
    searchdomain: Option<Text>,
    boot_order: Vec<Text>,
    ostype: Option<Text>,
    agent: Option<(bool, Option<bool>)>,
    bios: Option<bool>,
    machine: Option<Text>,
    tags: Vec<Text>,
    description: Option<Text>,
    smbios_uuid: Option<Text>,
    onboot: Option<bool>,
}

fn model(i: u8) -> NicModel {
    [
        NicModel::Virtio,
        NicModel::E1000,
        NicModel::E1000e,
        NicModel::Rtl8139,
        NicModel::Vmxnet3,
    ][usize::from(i) % 5]
}

fn nic(f: &FNic) -> Nic {
    let mut n = Nic::new(model(f.model), f.bridge.pick(BRIDGES));
    n.tag = f.tag;
    n.macaddr = f.mac.as_ref().map(|m| m.pick(MACS));
    n.firewall = f.firewall;
    n.mtu = f.mtu;
    n.link_down = f.link_down;
    n
}

fn drive(f: &FDrive) -> Drive {
    match f {
        FDrive::Disk {
            source,
            ssd,
            discard,
            iothread,
            cache,
            backup,
        } => {
            let mut d = match source {
                FSource::New { storage, size_gib } => Disk::new(storage.pick(STORAGES), *size_gib),
                FSource::Existing(v) => Disk::existing(v.pick(VOLUMES)),
                FSource::Import { storage, from } => {
                    Disk::import(storage.pick(STORAGES), from.pick(VOLUMES))
                }
            };
            d.ssd = *ssd;
            d.discard = *discard;
            d.iothread = *iothread;
            d.backup = *backup;
            d.cache = cache.map(|c| {
                [
                    CacheMode::None,
                    CacheMode::Writethrough,
                    CacheMode::Writeback,
                    CacheMode::Unsafe,
                    CacheMode::Directsync,
                ][usize::from(c) % 5]
            });
            Drive::Disk(d)
        }
        FDrive::CdromIso(v) => Drive::CdromIso(v.pick(VOLUMES)),
        FDrive::CdromEmpty => Drive::CdromEmpty,
        FDrive::CloudInit(s) => Drive::CloudInit {
            storage: s.pick(STORAGES),
        },
    }
}

fn config(input: &Input) -> VmConfig {
    let mut vm = VmConfig {
        name: input
            .name
            .as_ref()
            .map(|t| t.pick(&["web-1", "db.example.com", "a"])),
        cores: input.cores,
        sockets: input.sockets,
        cpu: input
            .cpu
            .as_ref()
            .map(|t| t.pick(&["host", "x86-64-v2-AES", "kvm64"])),
        // The simulator keeps integers as i64; Perl's (PVE's) integer check takes any digits.
        memory_mib: input.memory_mib.map(|m| m.min(i64::MAX as u64)),
        balloon_mib: input.balloon_mib,
        scsihw: input.scsihw.map(|h| {
            [
                ScsiHw::Lsi,
                ScsiHw::Lsi53c810,
                ScsiHw::VirtioScsiPci,
                ScsiHw::VirtioScsiSingle,
                ScsiHw::Megasas,
                ScsiHw::Pvscsi,
            ][usize::from(h) % 6]
        }),
        efidisk: input.efidisk.as_ref().map(|(s, m4, keys)| EfiDisk {
            storage: s.pick(STORAGES),
            efitype_4m: *m4,
            pre_enrolled_keys: *keys,
        }),
        ciuser: input
            .ciuser
            .as_ref()
            .map(|t| t.pick(&["ubuntu", "root", "debian"])),
        cipassword: input.cipassword.clone().map(Secret::new),
        sshkeys: input
            .sshkeys
            .iter()
            .map(|t| {
                t.pick(&[
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk user@host",
                    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= ops",
                ])
            })
            .collect(),
        nameservers: input.nameservers.clone(),
        searchdomain: input
            .searchdomain
            .as_ref()
            .map(|t| t.pick(&["example.com", "a.example b.example"])),
        boot_order: input
            .boot_order
            .iter()
            .map(|t| t.pick(&["scsi0", "ide2", "net0", "virtio1"]))
            .collect(),
        ostype: input.ostype.as_ref().map(|t| t.pick(&OS_TYPES)),
        agent: input.agent.map(|(enabled, fstrim)| AgentConfig {
            enabled,
            fstrim_cloned_disks: fstrim,
        }),
        bios: input
            .bios
            .map(|o| if o { Bios::Ovmf } else { Bios::Seabios }),
        machine: input
            .machine
            .as_ref()
            .map(|t| t.pick(&["q35", "pc-q35-8.1", "pc"])),
        tags: input
            .tags
            .iter()
            .map(|t| t.pick(&["pve-operator", "web", "prod_1", "a.b+c"]))
            .collect(),
        description: input
            .description
            .as_ref()
            .map(|t| t.pick(&["managed by pve-operator\nsecond line"])),
        smbios_uuid: input
            .smbios_uuid
            .as_ref()
            .map(|t| t.pick(&["01234567-89ab-cdef-0123-456789abcdef"])),
        onboot: input.onboot,
        ..VmConfig::default()
    };
    for (bus, index, d) in &input.drives {
        let bus =
            [DiskBus::Scsi, DiskBus::Virtio, DiskBus::Sata, DiskBus::Ide][usize::from(*bus) % 4];
        if let Ok(slot) = DiskSlot::new(bus, *index) {
            vm = vm.drive(slot, drive(d));
        }
    }
    for (i, n) in &input.nics {
        vm = vm.nic(*i, nic(n));
    }
    for (i, v4, v6) in &input.ipconfigs {
        let ip = IpConfig {
            ipv4: v4.as_ref().map(|v| match v {
                FIp4::Dhcp => Ipv4Config::Dhcp,
                FIp4::Static { cidr, gateway } => Ipv4Config::Static {
                    cidr: cidr.pick(&["192.0.2.10/24", "10.0.0.1/8"]),
                    gateway: *gateway,
                },
            }),
            ipv6: v6.as_ref().map(|v| match v {
                FIp6::Dhcp => Ipv6Config::Dhcp,
                FIp6::Auto => Ipv6Config::Auto,
                FIp6::Static { cidr, gateway } => Ipv6Config::Static {
                    cidr: cidr.pick(&["2001:db8::10/64", "fd00::1/128"]),
                    gateway: *gateway,
                },
            }),
        };
        vm = vm.ipconfig(*i, ip);
    }
    vm
}

fuzz_target!(|input: Input| {
    for (i, f) in &input.nics {
        let n = nic(f);
        if let Ok(encoded) = n.encode(*i) {
            match Nic::parse(&encoded) {
                Ok(back) => assert_eq!(back, n, "{encoded:?} decodes to another NIC"),
                Err(e) => panic!("{n:?} encodes to {encoded:?}, which does not decode: {e}"),
            }
        }
    }
    let vm = config(&input);
    let Ok(params) = vm.to_params() else {
        return;
    };
    let form = params.form_encode();
    let mut raw: BTreeMap<String, Value> = form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    raw.insert("node".into(), Value::String("pve".into()));
    raw.insert("vmid".into(), Value::String("100".into()));
    let table = pve_sim::params::generated::table("POST", "/nodes/{node}/qemu")
        .expect("the simulator has the create table");
    if let Err(e) = pve_sim::params::validate(table, raw) {
        panic!(
            "the client accepted a config that PVE's schema refuses: {:?}\nform: {form}",
            e.errors
        );
    }
});
