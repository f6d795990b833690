//! Specs shaped like the deploy examples, and a small model of how Proxmox stores what it is
//! sent: disks allocated and rewritten to `storage:vm-<id>-disk-<n>,<options sorted>,size=NG`,
//! NICs rewritten to `<model>=<MAC>,<options sorted>`, tags verbatim on create and normalised
//! on update (PVE 8.4; 9.1.17+ normalises them on create too), descriptions read back without
//! trailing whitespace, `memory` as a string. `fake_vm_vs_sim` holds this model to pve-sim.

use std::collections::BTreeMap;

use pve_client::api::qemu::CloneOptions;
use pve_client::api::vmconfig::{VmConfig, VmConfigView};
use pve_client::propstring::PropertyString;
use pve_operator_api::machine_request::MachineRequestSpec;
use serde_json::{Value, json};

use crate::vmspec::{Desired, Marker, SpecError, UpdatePlan};

// One-shot forms of the desired VM's methods: each builds the desired VM of `spec` (as a
// reconcile does once) and calls one method on it.

/// [`Desired::new`], the check that runs before anything is recorded.
pub fn check_encodes(
    spec: &MachineRequestSpec,
    marker: &Marker,
    name: &str,
) -> Result<(), SpecError> {
    Desired::new(spec, marker, name).map(|_| ())
}

/// [`Desired::create_config`] of `spec`.
pub fn create_config(
    spec: &MachineRequestSpec,
    marker: &Marker,
    name: &str,
) -> Result<VmConfig, SpecError> {
    Desired::new(spec, marker, name)?.create_config()
}

/// [`Desired::clone_options`] of `spec`.
pub fn clone_options(
    spec: &MachineRequestSpec,
    marker: &Marker,
    name: &str,
    newid: u32,
) -> Result<CloneOptions, SpecError> {
    Desired::new(spec, marker, name)?.clone_options(newid)
}

/// [`Desired::plan_update`] of `spec` against `current`.
pub fn plan_update(
    spec: &MachineRequestSpec,
    marker: &Marker,
    name: &str,
    current: &VmConfigView,
) -> Result<UpdatePlan, SpecError> {
    Desired::new(spec, marker, name)?.plan_update(current)
}

/// The request uid used throughout.
pub const UID: &str = "0b9b1a2c-5d3e-4c8e-9f00-123456789abc";

/// The marker of the test request `default/web-1`.
pub fn marker() -> Marker {
    Marker::new(UID, "default", "web-1")
}

/// A spec from YAML, as a user writes it.
pub fn spec(yaml: &str) -> MachineRequestSpec {
    serde_yaml::from_str(yaml).expect("test spec parses")
}

/// A small VM installed from an ISO.
pub fn small_iso() -> MachineRequestSpec {
    spec(
        r"
cpu: {cores: 2}
memory: {sizeMiB: 2048}
disks:
  - {slot: scsi0, storage: local-lvm, sizeGiB: 32, discard: true, iothread: true, ssd: true}
networks:
  - {name: net0, bridge: vmbr0}
boot:
  iso: {volume: 'local:iso/debian-12.7.0-amd64-netinst.iso'}
",
    )
}

/// A cloud-init VM cloned from a template.
pub fn cloud_init_template() -> MachineRequestSpec {
    spec(
        r"
cpu: {cores: 4, type: host}
memory: {sizeMiB: 4096}
disks:
  - {slot: scsi0, storage: local-lvm, sizeGiB: 20}
networks:
  - {name: net0, bridge: vmbr0, vlan: 20}
boot:
  template: {name: debian-12-cloud, full: true}
cloudInit:
  user: debian
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs admin@example.com']
  ipConfigs:
    - {interface: net0, address: 192.0.2.10/24, gateway: 192.0.2.1}
  nameservers: [192.0.2.53]
  searchDomain: example.com
guestAgent: true
tags: [web, Prod]
description: Web server
",
    )
}

/// A VM that should stay stopped (network boot).
pub fn stopped_pxe() -> MachineRequestSpec {
    spec(
        r"
memory: {sizeMiB: 1024}
disks:
  - {slot: virtio0, storage: local-lvm, sizeGiB: 8}
networks:
  - {name: net0, bridge: vmbr0, model: e1000, mac: 'bc:24:11:aa:bb:cc'}
boot:
  network: {}
powerState: Stopped
",
    )
}

/// Several disks and NICs, cloud-init with DHCP.
pub fn multi_disk_multi_nic() -> MachineRequestSpec {
    spec(
        r"
cpu: {cores: 2, sockets: 2}
memory: {sizeMiB: 8192, balloonMiB: 4096}
disks:
  - {slot: scsi0, storage: local-lvm, sizeGiB: 32, iothread: true}
  - {slot: scsi1, storage: local-lvm, sizeGiB: 100, cache: writeback}
  - {slot: sata0, storage: local, sizeGiB: 10, ssd: true}
networks:
  - {name: net0, bridge: vmbr0, firewall: true}
  - {name: net1, bridge: vmbr1, vlan: 100, model: vmxnet3}
boot:
  iso: {volume: 'local:iso/ubuntu-24.04-live-server-amd64.iso'}
cloudInit:
  ipConfigs:
    - {interface: net0, dhcp: true}
    - {interface: net1, address: 10.0.100.5/24}
startOnBoot: true
pool: team-a
",
    )
}

/// UEFI with an EFI disk and q35.
pub fn ovmf() -> MachineRequestSpec {
    spec(
        r"
memory: {sizeMiB: 2048}
disks:
  - {slot: scsi0, storage: local-lvm, sizeGiB: 16}
networks:
  - {name: net0, bridge: vmbr0}
boot:
  iso: {volume: 'local:iso/debian-12.7.0-amd64-netinst.iso'}
firmware:
  bios: OVMF
  machine: q35
  efiDisk: {storage: local-lvm, preEnrolledKeys: true}
",
    )
}

/// [`ovmf`] with a TPM 2.0 on local-lvm.
pub fn ovmf_with_tpm() -> MachineRequestSpec {
    let mut s = ovmf();
    s.firmware.tpm_state = Some(pve_operator_api::machine_request::TpmState {
        storage: "local-lvm".into(),
        version: pve_operator_api::machine_request::TpmVersion::V2_0,
    });
    s
}

/// A config view from `GET .../config` JSON.
pub fn view(value: Value) -> VmConfigView {
    serde_json::from_value(value).expect("config JSON")
}

/// The parameters of a config as a key → wire value map.
pub fn params(config: &VmConfig) -> BTreeMap<String, String> {
    config
        .to_params()
        .expect("encodable config")
        .iter()
        .map(|(k, v)| (k.to_owned(), v.wire()))
        .collect()
}

/// A VM in the model of Proxmox.
pub struct FakeVm {
    vmid: u32,
    macs: u8,
    /// The stored config.
    pub values: BTreeMap<String, String>,
}

impl FakeVm {
    /// `POST /nodes/{node}/qemu` with `config`, after the create task.
    pub fn create(vmid: u32, config: &VmConfig) -> Self {
        let mut vm = Self {
            vmid,
            macs: 0,
            values: BTreeMap::new(),
        };
        for (k, v) in params(config) {
            if k == "pool" {
                continue;
            }
            let v = vm.rewrite(&k, &v, false);
            vm.values.insert(k, v);
        }
        vm.values
            .entry("smbios1".into())
            .or_insert_with(|| "uuid=7d3cc0a8-1111-2222-3333-444455556666".into());
        vm.values
            .insert("meta".into(), "creation-qemu=9.0.2,ctime=1732350000".into());
        vm.values.insert(
            "vmgenid".into(),
            "5f0a5c61-aaaa-bbbb-cccc-ddddeeeeffff".into(),
        );
        vm
    }

    /// A VM as stored, from raw values.
    pub fn from_values(vmid: u32, values: Value) -> Self {
        let values = view(values).values;
        Self {
            vmid,
            macs: 0x40,
            values,
        }
    }

    /// `POST .../clone` of `template` with `opts`, after the clone task: the template's config
    /// with new disks, new MACs, a new SMBIOS uuid, and the clone parameters.
    pub fn clone_of(template: &FakeVm, opts: &CloneOptions) -> Self {
        let mut vm = Self {
            vmid: opts.newid,
            macs: 0x80,
            values: BTreeMap::new(),
        };
        let mut n = 0;
        for (k, v) in &template.values {
            let v = if let Some(rest) = v.strip_prefix("local-lvm:base-") {
                let (_, opts_) = rest.split_once(',').unwrap_or((rest, ""));
                let storage = opts.storage.as_deref().unwrap_or("local-lvm");
                n += 1;
                let mut s = format!("{storage}:vm-{}-disk-{}", opts.newid, n - 1);
                if !opts_.is_empty() {
                    s = format!("{s},{opts_}");
                }
                s
            } else if let Some(index) = k.strip_prefix("net") {
                let mut nic = pve_client::api::vmconfig::Nic::parse(v).expect("template NIC");
                nic.macaddr = Some(vm.next_mac());
                nic.encode(index.parse().expect("nic index"))
                    .expect("NIC encodes")
            } else if k == "smbios1" {
                "uuid=99999999-8888-7777-6666-555555555555".into()
            } else if k == "template" {
                continue;
            } else {
                v.clone()
            };
            vm.values.insert(k.clone(), v);
        }
        if let Some(name) = &opts.name {
            vm.values.insert("name".into(), name.clone());
        }
        if let Some(d) = &opts.description {
            vm.values
                .insert("description".into(), d.trim_end().to_owned());
        }
        vm
    }

    /// `PUT .../config` with the plan, then the resizes.
    pub fn apply(&mut self, plan: &UpdatePlan) {
        for k in &plan.delete {
            self.values.remove(k);
        }
        for (k, v) in params(&plan.config) {
            let v = self.rewrite(&k, &v, true);
            self.values.insert(k, v);
        }
        for (slot, gib) in &plan.resizes {
            let key = slot.to_string();
            let old = self.values.get(&key).expect("resized disk exists").clone();
            let mut parts: Vec<String> = old
                .split(',')
                .filter(|p| !p.starts_with("size="))
                .map(str::to_owned)
                .collect();
            parts.push(format!("size={gib}G"));
            self.values.insert(key, sort_options(&parts.join(",")));
        }
    }

    /// `GET .../config`: numbers as JSON numbers, `memory` as a string, plus a digest.
    pub fn view(&self) -> VmConfigView {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.values {
            let numeric = matches!(k.as_str(), "cores" | "sockets" | "balloon" | "onboot");
            let value = match v.parse::<i64>() {
                Ok(n) if numeric => json!(n),
                _ => json!(v),
            };
            m.insert(k.clone(), value);
        }
        m.insert(
            "digest".into(),
            json!("3c4f2a9e8f1d0b7c6a5e4d3c2b1a09f8e7d6c5b4"),
        );
        view(Value::Object(m))
    }

    fn next_mac(&mut self) -> String {
        self.macs += 1;
        format!("BC:24:11:5E:7A:{:02X}", self.macs)
    }

    fn next_disk(&self, storage: &str) -> String {
        let prefix = format!("{storage}:vm-{}-disk-", self.vmid);
        let n = self
            .values
            .values()
            .filter_map(|v| {
                v.split(',')
                    .next()?
                    .strip_prefix(&prefix)?
                    .parse::<u32>()
                    .ok()
            })
            .map(|n| n + 1)
            .max()
            .unwrap_or(0);
        format!("{prefix}{n}")
    }

    fn rewrite(&mut self, key: &str, value: &str, update: bool) -> String {
        let is_drive = pve_client::api::vmconfig::DiskSlot::parse(key).is_ok()
            || key == "efidisk0"
            || key == "tpmstate0";
        if is_drive {
            let (file, rest) = value.split_once(',').unwrap_or((value, ""));
            let (storage, vol) = file.split_once(':').expect("drive with a storage");
            let mut parts: Vec<String> = rest
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let file = if vol == "cloudinit" {
                format!("{storage}:vm-{}-cloudinit", self.vmid)
            } else if let Ok(gib) = vol.parse::<u64>() {
                // The EFI vars and the TPM state are 4 MiB on LVM whatever size is asked.
                let size = if key == "efidisk0" || key == "tpmstate0" {
                    "4M".to_owned()
                } else {
                    format!("{gib}G")
                };
                parts.push(format!("size={size}"));
                self.next_disk(storage)
            } else {
                file.to_owned()
            };
            parts.insert(0, file);
            return sort_options(&parts.join(","));
        }
        if key.starts_with("net") && !key.starts_with("nameserver") {
            let p = PropertyString::parse(value).expect("NIC property string");
            if let Some(model) = p.get("model") {
                let old_mac = self
                    .values
                    .get(key)
                    .filter(|_| update)
                    .and_then(|o| pve_client::api::vmconfig::Nic::parse(o).ok())
                    .and_then(|n| n.macaddr);
                let mac = old_mac.unwrap_or_else(|| self.next_mac());
                let rest: Vec<String> = p
                    .entries()
                    .filter(|(k, _)| *k != Some("model"))
                    .map(|(k, v)| format!("{}={v}", k.unwrap_or_default()))
                    .collect();
                return sort_options(&format!("{model}={mac},{}", rest.join(",")));
            }
            return sort_options(value);
        }
        match key {
            "tags" if update => {
                let mut t: Vec<String> = value
                    .split([';', ',', ' '])
                    .filter(|t| !t.is_empty())
                    .map(str::to_ascii_lowercase)
                    .collect();
                t.sort();
                t.dedup();
                t.join(";")
            }
            // Stored as `#` lines; read back without trailing whitespace (as pve-sim does).
            "description" => value.trim_end().to_owned(),
            _ => value.to_owned(),
        }
    }
}

/// A drive or NIC value with its first entry kept and the others sorted, as `print_drive` and
/// `add_random_macs` write them.
fn sort_options(value: &str) -> String {
    let mut parts: Vec<&str> = value.split(',').filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    let first = parts.remove(0);
    parts.sort_unstable();
    std::iter::once(first)
        .chain(parts)
        .collect::<Vec<_>>()
        .join(",")
}
