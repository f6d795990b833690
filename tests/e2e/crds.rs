//! The committed CRDs (`crds/`) on the real API server: they install, and admission rejects what
//! the schema and CEL rules forbid, with messages that name the field.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::conditions::is_crd_established;
use kube::runtime::wait::Condition as _;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::support::shared_namespace;

/// Applies every CRD under `crds/` (the files users apply) and waits until each is Established.
pub async fn install_crds(client: &Client) {
    testenv::install_committed_crds(client, "e2e-tests").await;
}

/// The MachineRequests (untyped, so that any JSON can be sent) of a new namespace named after
/// `prefix` on the shared control plane with the CRDs installed.
async fn machine_requests(prefix: &str) -> Api<DynamicObject> {
    let (_, client, ns) = shared_namespace(prefix).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "pve-operator.dev",
        "v1alpha1",
        "MachineRequest",
    ));
    Api::namespaced_with(client, &ns, &resource)
}

fn object(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": "MachineRequest",
        "metadata": { "name": name },
        "spec": spec,
    })
}

/// A valid spec; each bad case changes one thing in it.
fn valid_spec() -> Value {
    json!({
        "cpu": { "cores": 2 },
        "memory": { "sizeMiB": 2048 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 32 }],
        "networks": [{ "name": "net0", "bridge": "vmbr0" }],
        "boot": { "iso": { "volume": "local:iso/debian-12.7.0-amd64-netinst.iso" } },
    })
}

/// Sets `value` at a JSON pointer inside `doc`, creating objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut current = doc;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        current = match current {
            Value::Array(items) => {
                let index: usize = part.parse().expect("array index");
                if last {
                    if index == items.len() {
                        items.push(value);
                    } else {
                        items[index] = value;
                    }
                    return;
                }
                &mut items[index]
            }
            other => {
                let map = other.as_object_mut().expect("object on the path");
                if last {
                    map.insert((*part).to_string(), value);
                    return;
                }
                map.entry((*part).to_string()).or_insert_with(|| json!({}))
            }
        };
    }
}

/// [`valid_spec`] with `value` set at `pointer`.
fn valid_spec_with(pointer: &str, value: &Value) -> Value {
    let mut spec = valid_spec();
    set(&mut spec, pointer, value.clone());
    spec
}

/// The answers to cases the API server must refuse (or accept), collected so that one run
/// reports every wrong case at once.
#[derive(Default)]
pub struct Verdicts {
    wrong: Vec<String>,
    total: usize,
}

impl Verdicts {
    /// Case `case` must be refused, with status 422 (Unprocessable Entity) when `unprocessable`,
    /// by a message containing every one of `expected`.
    pub fn refused(
        &mut self,
        case: &str,
        answer: Result<(), String>,
        unprocessable: bool,
        expected: &[&str],
    ) {
        self.total += 1;
        let status = if unprocessable { "422 " } else { "" };
        match answer {
            Ok(()) => self.wrong.push(format!("{case}: was ACCEPTED")),
            Err(message)
                if !message.starts_with(status)
                    || !expected.iter().all(|e| message.contains(e)) =>
            {
                self.wrong.push(format!(
                    "{case}: expected {status}naming {expected:?}, got: {message}"
                ))
            }
            Err(_) => {}
        }
    }

    /// Case `case` must be accepted.
    pub fn accepted(&mut self, case: &str, answer: Result<(), String>) {
        self.total += 1;
        if let Err(message) = answer {
            self.wrong.push(format!("{case}: refused: {message}"));
        }
    }

    /// Fails with every wrong case, one a line.
    #[track_caller]
    pub fn assert_all_right(&self) {
        assert!(
            self.wrong.is_empty(),
            "{} of {} cases wrong:\n{}",
            self.wrong.len(),
            self.total,
            self.wrong.join("\n")
        );
    }
}

async fn create(api: &Api<DynamicObject>, name: &str, spec: Value) -> Result<(), String> {
    let obj: DynamicObject = serde_json::from_value(object(name, spec)).expect("object JSON");
    api.create(&PostParams::default(), &obj)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            kube::Error::Api(status) => format!("{} {}", status.code, status.message),
            other => format!("not an API error: {other}"),
        })
}

#[tokio::test]
async fn crds_install_and_become_established() {
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    for name in [
        "machinerequests.pve-operator.dev",
        "proxmoxclusters.pve-operator.dev",
    ] {
        let crd = crds.get(name).await.expect("CRD exists");
        assert!(
            is_crd_established().matches_object(Some(&crd)),
            "{name} is Established"
        );
    }
}

#[tokio::test]
async fn admission_accepts_the_valid_shapes() {
    let api = machine_requests("crd-valid").await;

    create(&api, "minimal", valid_spec())
        .await
        .expect("the minimal spec is valid");
    let full = json!({
        "clusterRef": { "name": "pve-lab" },
        "vmName": "web-1.example.com",
        "placement": { "allowedNodes": ["pve1", "pve2"], "strategy": "MostFreeMemory" },
        "cpu": { "cores": 4, "sockets": 1, "type": "x86-64-v2-AES" },
        "memory": { "sizeMiB": 4096, "balloonMiB": 1024 },
        "disks": [
            { "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 32, "ssd": true, "discard": true, "iothread": true, "cache": "none" },
            { "slot": "virtio1", "storage": "ceph-pool", "sizeGiB": 100 }
        ],
        "networks": [
            { "name": "net0", "bridge": "vmbr0", "vlan": 10, "model": "virtio", "mac": "BC:24:11:2A:3B:4C", "firewall": true },
            { "name": "net1", "bridge": "vmbr1" }
        ],
        "boot": { "template": { "name": "debian-12-cloud", "full": false } },
        "cloudInit": {
            "user": "debian",
            "sshKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI user@host"],
            "ipConfigs": [
                { "interface": "net0", "address": "192.0.2.10/24", "gateway": "192.0.2.1" },
                { "interface": "net1", "dhcp": true }
            ],
            "nameservers": ["192.0.2.53", "2001:db8::53"],
            "searchDomain": "example.com"
        },
        "firmware": {
            "bios": "OVMF",
            "efiDisk": { "storage": "local-lvm", "preEnrolledKeys": true },
            "tpmState": { "storage": "local-lvm", "version": "v2.0" },
            "machine": "q35"
        },
        "pciDevices": [
            { "mapping": "gpu_a4000", "pcie": true, "rombar": false, "primaryGpu": true },
            { "mapping": "vgpu_pool", "mdev": "nvidia-63" }
        ],
        "usbDevices": [{ "mapping": "yubikey", "usb3": true }],
        "guestAgent": true,
        "tags": ["k8s", "web"],
        "description": "web server, managed by GitOps",
        "pool": "k8s",
        "startOnBoot": true,
        "powerState": "Stopped",
        "deletionPolicy": "Retain",
        "pendingChanges": "Restart"
    });
    create(&api, "full", full)
        .await
        .expect("every field set validly is accepted");

    let stored = api.get("minimal").await.expect("stored");
    assert_eq!(
        stored.data["spec"]["powerState"], "Running",
        "server-side default"
    );
    assert_eq!(
        stored.data["spec"]["deletionPolicy"], "Delete",
        "server-side default"
    );
    assert_eq!(
        stored.data["spec"]["cpu"]["sockets"], 1,
        "server-side default"
    );
}

#[tokio::test]
async fn admission_rejects_bad_input_naming_the_field() {
    let api = machine_requests("crd-invalid").await;

    // (case, pointer into spec, bad value, text the server's message must contain)
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("no cores", "/cpu/cores", json!(0), "spec.cpu.cores"),
        (
            "too many cores",
            "/cpu/cores",
            json!(1000),
            "spec.cpu.cores",
        ),
        (
            "too many sockets",
            "/cpu/sockets",
            json!(5),
            "spec.cpu.sockets",
        ),
        (
            "cpu type injection",
            "/cpu/type",
            json!("host,flags=+aes"),
            "spec.cpu.type",
        ),
        (
            "tiny memory",
            "/memory/sizeMiB",
            json!(8),
            "spec.memory.sizeMiB",
        ),
        (
            "balloon above memory",
            "/memory/balloonMiB",
            json!(4096),
            "balloonMiB must not exceed sizeMiB",
        ),
        (
            "vlan 0",
            "/networks/0/vlan",
            json!(0),
            "spec.networks[0].vlan",
        ),
        (
            "vlan 4095",
            "/networks/0/vlan",
            json!(4095),
            "spec.networks[0].vlan",
        ),
        (
            "bridge injection",
            "/networks/0/bridge",
            json!("vmbr0,tag=5"),
            "spec.networks[0].bridge",
        ),
        (
            "bridge newline",
            "/networks/0/bridge",
            json!("vmbr0\nfw=1"),
            "spec.networks[0].bridge",
        ),
        (
            "short mac",
            "/networks/0/mac",
            json!("BC:24:11:00:00"),
            "spec.networks[0].mac",
        ),
        (
            "multicast mac",
            "/networks/0/mac",
            json!("01:00:5E:00:00:01"),
            "spec.networks[0].mac",
        ),
        (
            "unknown nic model",
            "/networks/0/model",
            json!("ne2k"),
            "spec.networks[0].model",
        ),
        (
            "nic slot",
            "/networks/0/name",
            json!("eth0"),
            "spec.networks[0].name",
        ),
        (
            "storage injection",
            "/disks/0/storage",
            json!("local-lvm,size=1000"),
            "spec.disks[0].storage",
        ),
        (
            "storage semicolon",
            "/disks/0/storage",
            json!("local;lvm"),
            "spec.disks[0].storage",
        ),
        (
            "disk slot",
            "/disks/0/slot",
            json!("scsi31"),
            "spec.disks[0].slot",
        ),
        (
            "zero disk",
            "/disks/0/sizeGiB",
            json!(0),
            "spec.disks[0].sizeGiB",
        ),
        (
            "duplicate disk slot",
            "/disks/1",
            json!({ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 8 }),
            "spec.disks[1]",
        ),
        (
            "unknown cache",
            "/disks/0/cache",
            json!("fast"),
            "spec.disks[0].cache",
        ),
        (
            "iso injection",
            "/boot/iso/volume",
            json!("local:iso/x.iso,media=disk"),
            "spec.boot.iso.volume",
        ),
        (
            "iso not an iso",
            "/boot/iso/volume",
            json!("local:images/x.qcow2"),
            "spec.boot.iso.volume",
        ),
        (
            "two boot sources",
            "/boot/network",
            json!({}),
            "exactly one boot source",
        ),
        (
            "no boot source",
            "/boot",
            json!({}),
            "exactly one boot source",
        ),
        (
            "template by vmid and name",
            "/boot",
            json!({ "template": { "vmid": 9000, "name": "tpl" } }),
            "exactly one of vmid or name",
        ),
        (
            "tag injection",
            "/tags",
            json!(["ok", "a,b"]),
            "spec.tags[1]",
        ),
        ("tag equals", "/tags", json!(["a=b"]), "spec.tags[0]"),
        ("pool injection", "/pool", json!("k8s;rm"), "spec.pool"),
        ("vm name", "/vmName", json!("bad_name"), "spec.vmName"),
        (
            "placement both",
            "/placement",
            json!({ "node": "pve1", "allowedNodes": ["pve2"] }),
            "either node or allowedNodes",
        ),
        (
            "node injection",
            "/placement",
            json!({ "node": "pve1,x=y" }),
            "spec.placement.node",
        ),
        (
            "ovmf without efi disk",
            "/firmware",
            json!({ "bios": "OVMF" }),
            "needs an efiDisk",
        ),
        (
            "efi disk with seabios",
            "/firmware",
            json!({ "efiDisk": { "storage": "local-lvm" } }),
            "only with bios: OVMF",
        ),
        (
            "tpm with seabios",
            "/firmware",
            json!({ "tpmState": { "storage": "local-lvm" } }),
            "tpmState is used only with bios: OVMF",
        ),
        (
            "tpm version",
            "/firmware",
            json!({
                "bios": "OVMF",
                "efiDisk": { "storage": "local-lvm" },
                "tpmState": { "storage": "local-lvm", "version": "v3" }
            }),
            "spec.firmware.tpmState.version",
        ),
        (
            "tpm storage injection",
            "/firmware",
            json!({
                "bios": "OVMF",
                "efiDisk": { "storage": "local-lvm" },
                "tpmState": { "storage": "local-lvm,import-from=x" }
            }),
            "spec.firmware.tpmState.storage",
        ),
        (
            "machine type",
            "/firmware/machine",
            json!("q35,accel=tcg"),
            "spec.firmware.machine",
        ),
        (
            "power state",
            "/powerState",
            json!("Paused"),
            "spec.powerState",
        ),
        (
            "deletion policy",
            "/deletionPolicy",
            json!("Orphan"),
            "spec.deletionPolicy",
        ),
        (
            "ip dhcp and static",
            "/cloudInit",
            json!({ "ipConfigs": [{ "interface": "net0", "dhcp": true, "address": "192.0.2.1/24" }] }),
            "either dhcp: true or a static address",
        ),
        (
            "ip config for a missing nic",
            "/cloudInit",
            json!({ "ipConfigs": [{ "interface": "net5", "dhcp": true }] }),
            "must name one of spec.networks[].name",
        ),
        (
            "bad address",
            "/cloudInit",
            json!({ "ipConfigs": [{ "interface": "net0", "address": "192.0.2.300/24" }] }),
            "spec.cloudInit.ipConfigs[0].address",
        ),
        (
            "nameserver",
            "/cloudInit",
            json!({ "nameservers": ["dns.example.com"] }),
            "nameservers must be IP addresses",
        ),
        (
            "ssh key newline",
            "/cloudInit",
            json!({ "sshKeys": ["ssh-ed25519 AAAA a\nssh-rsa BBBB b"] }),
            "spec.cloudInit.sshKeys[0]",
        ),
        (
            "user injection",
            "/cloudInit",
            json!({ "user": "root;rm" }),
            "spec.cloudInit.user",
        ),
    ];
    assert!(cases.len() >= 20);

    let mut verdicts = Verdicts::default();
    for (i, (case, pointer, value, expected)) in cases.iter().enumerate() {
        let answer = create(&api, &format!("bad-{i}"), valid_spec_with(pointer, value)).await;
        verdicts.refused(case, answer, true, &[expected]);
    }
    verdicts.assert_all_right();
}

#[tokio::test]
async fn admission_takes_passthrough_devices_only_by_resource_mapping() {
    let api = machine_requests("crd-passthrough").await;
    let pci = |device: Value| json!([device]);
    let root_only = ["needs root@pam", "Datacenter → Resource Mappings"];
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        (
            "pci address",
            "/pciDevices",
            pci(json!({ "mapping": "0000:01:00.0" })),
            root_only.to_vec(),
        ),
        (
            "short pci address",
            "/pciDevices",
            pci(json!({ "mapping": "01:00.0" })),
            root_only.to_vec(),
        ),
        (
            "vendor:device",
            "/pciDevices",
            pci(json!({ "mapping": "10de:2204" })),
            root_only.to_vec(),
        ),
        (
            "host=",
            "/pciDevices",
            pci(json!({ "mapping": "host=0000:01:00.0" })),
            root_only.to_vec(),
        ),
        (
            "usb vendor:product",
            "/usbDevices",
            pci(json!({ "mapping": "1050:0407" })),
            vec!["needs root@pam", "USB resource mapping"],
        ),
        (
            "usb port",
            "/usbDevices",
            pci(json!({ "mapping": "1-2.3" })),
            vec!["needs root@pam", "/mapping/usb/<name>"],
        ),
        (
            "usb host=",
            "/usbDevices",
            pci(json!({ "mapping": "host=spice" })),
            vec!["needs root@pam"],
        ),
        (
            "mapping injection",
            "/pciDevices",
            pci(json!({ "mapping": "gpu,x-vga=1" })),
            vec!["spec.pciDevices[0].mapping"],
        ),
        (
            "mapping case",
            "/usbDevices",
            pci(json!({ "mapping": "Yubikey" })),
            vec!["spec.usbDevices[0].mapping"],
        ),
        (
            "mdev injection",
            "/pciDevices",
            pci(json!({ "mapping": "gpu", "mdev": "a,romfile=x" })),
            vec!["spec.pciDevices[0].mdev"],
        ),
        (
            "duplicate pci",
            "/pciDevices",
            json!([{ "mapping": "gpu" }, { "mapping": "gpu" }]),
            vec!["each PCI resource mapping may be named once"],
        ),
        (
            "duplicate usb",
            "/usbDevices",
            json!([{ "mapping": "key" }, { "mapping": "key" }]),
            vec!["each USB resource mapping may be named once"],
        ),
        (
            "too many pci",
            "/pciDevices",
            Value::Array(
                (0..17)
                    .map(|i| json!({ "mapping": format!("gpu{i}") }))
                    .collect(),
            ),
            vec!["spec.pciDevices", "16"],
        ),
        (
            "too many usb",
            "/usbDevices",
            Value::Array(
                (0..15)
                    .map(|i| json!({ "mapping": format!("key{i}") }))
                    .collect(),
            ),
            vec!["spec.usbDevices", "14"],
        ),
        (
            "pcie without machine",
            "/pciDevices",
            pci(json!({ "mapping": "gpu", "pcie": true })),
            vec![
                "needs the q35 machine type",
                "q35 machine model is not enabled",
            ],
        ),
    ];
    let mut verdicts = Verdicts::default();
    for (i, (case, pointer, value, expected)) in cases.iter().enumerate() {
        let answer = create(&api, &format!("bad-{i}"), valid_spec_with(pointer, value)).await;
        verdicts.refused(case, answer, true, expected);
    }
    let mut i440fx = valid_spec_with(
        "/pciDevices",
        &pci(json!({ "mapping": "gpu", "pcie": true })),
    );
    set(&mut i440fx, "/firmware/machine", json!("pc-i440fx-9.0"));
    let answer = create(&api, "pcie-i440fx", i440fx).await;
    verdicts.refused(
        "pcie on i440fx",
        answer,
        true,
        &["needs the q35 machine type"],
    );
    let mut q35 = valid_spec_with(
        "/pciDevices",
        &pci(json!({ "mapping": "gpu", "pcie": true })),
    );
    set(&mut q35, "/firmware/machine", json!("pc-q35-9.0"));
    verdicts.accepted(
        "pcie on a versioned q35",
        create(&api, "pcie-q35", q35).await,
    );
    let plain = valid_spec_with("/pciDevices", &pci(json!({ "mapping": "gpu" })));
    verdicts.accepted(
        "pci without pcie on the default machine",
        create(&api, "pci-pc", plain).await,
    );
    verdicts.assert_all_right();
    let stored = api.get("pci-pc").await.expect("stored");
    assert_eq!(
        stored.data["spec"]["pciDevices"][0]["rombar"], true,
        "server-side default"
    );
}

#[tokio::test]
async fn admission_refuses_shrinking_removing_or_moving_disks_and_changing_immutable_fields() {
    let api = machine_requests("crd-update").await;
    let mut base = valid_spec();
    set(
        &mut base,
        "/disks/1",
        json!({ "slot": "scsi1", "storage": "local-lvm", "sizeGiB": 10 }),
    );
    set(&mut base, "/networks/0/mac", json!("BC:24:11:2A:3B:4C"));
    create(&api, "vm", base.clone()).await.expect("created");

    let update_named = |name: &'static str, spec: Value| {
        let api = api.clone();
        async move {
            // A merge patch replaces lists whole, as `kubectl apply` of an edited file does.
            let patch = json!({ "spec": spec });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let update = |spec: Value| update_named("vm", spec);

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "shrink a disk",
            "/disks/0/sizeGiB",
            json!(16),
            "disks can grow but never shrink",
        ),
        (
            "move a disk",
            "/disks/0/storage",
            json!("other-storage"),
            "storage is immutable",
        ),
        (
            "remove a disk",
            "/disks",
            json!([{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 32 }]),
            "cannot be removed",
        ),
        (
            "change the boot source",
            "/boot",
            json!({ "network": {} }),
            "boot is immutable",
        ),
        (
            "add a clusterRef",
            "/clusterRef",
            json!({ "name": "other" }),
            "clusterRef is immutable",
        ),
        (
            "change a MAC",
            "/networks/0/mac",
            json!("BC:24:11:2A:3B:4D"),
            "MAC address is immutable",
        ),
        (
            "switch firmware",
            "/firmware",
            json!({ "bios": "OVMF", "efiDisk": { "storage": "local-lvm" } }),
            "bios is immutable",
        ),
    ];
    let mut verdicts = Verdicts::default();
    for (case, pointer, value, expected) in &cases {
        let mut spec = base.clone();
        set(&mut spec, pointer, value.clone());
        verdicts.refused(case, update(spec).await, false, &[expected]);
    }
    verdicts.assert_all_right();

    // A TPM stays as it was created: the keys sealed in it live only there.
    let mut uefi = base.clone();
    set(
        &mut uefi,
        "/firmware",
        json!({
            "bios": "OVMF",
            "efiDisk": { "storage": "local-lvm" },
            "tpmState": { "storage": "local-lvm" }
        }),
    );
    create(&api, "uefi", uefi.clone()).await.expect("created");
    let update_uefi = |spec: Value| update_named("uefi", spec);
    let mut without = uefi.clone();
    set(&mut without, "/firmware/tpmState", Value::Null);
    verdicts.refused(
        "remove the TPM",
        update_uefi(without).await,
        false,
        &["tpmState cannot be removed"],
    );
    let mut other = uefi.clone();
    set(&mut other, "/firmware/tpmState/version", json!("v1.2"));
    verdicts.refused(
        "change the TPM version",
        update_uefi(other).await,
        false,
        &["tpmState is immutable"],
    );
    verdicts.assert_all_right();

    // What may change does: a disk grows, a disk is added, cores change.
    let mut grown = base.clone();
    set(&mut grown, "/disks/0/sizeGiB", json!(64));
    set(
        &mut grown,
        "/disks/2",
        json!({ "slot": "virtio0", "storage": "local-lvm", "sizeGiB": 5 }),
    );
    set(&mut grown, "/cpu/cores", json!(8));
    update(grown)
        .await
        .expect("growing and adding disks and changing cores is allowed");
    let stored = api.get("vm").await.expect("stored");
    assert_eq!(stored.data["spec"]["disks"][0]["sizeGiB"], 64);
    assert_eq!(stored.data["spec"]["cpu"]["cores"], 8);
}

/// A well-formed key of `key_type` (blob: the type, then 32 bytes), encoded by the `base64`
/// crate rather than by any code under test.
fn ssh_key_of(key_type: &str, comment: &str) -> String {
    use base64::Engine as _;
    let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(key_type.as_bytes());
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[0x5A; 32]);
    let body = base64::engine::general_purpose::STANDARD.encode(blob);
    if comment.is_empty() {
        format!("{key_type} {body}")
    } else {
        format!("{key_type} {body} {comment}")
    }
}

/// The SSH key pattern as the API server's RE2 evaluates it: every accepted type, comments that
/// cloud-init's YAML reads as plain text, and none of the characters or sequences that would
/// break or inject into the user-data.
#[tokio::test]
async fn admission_accepts_only_openssh_public_keys_safe_for_cloud_init_yaml() {
    let api = machine_requests("crd-ssh").await;
    let with_keys = |keys: Vec<String>| {
        let mut spec = valid_spec();
        set(&mut spec, "/cloudInit", json!({ "sshKeys": keys }));
        spec
    };

    let mut accepted: Vec<String> = pve_client::sshkey::KEY_TYPES
        .iter()
        .map(|t| ssh_key_of(t, "alice@laptop"))
        .collect();
    accepted.extend([
        ssh_key_of("ssh-ed25519", ""),
        ssh_key_of("ssh-ed25519", "bob's key (work) user:host a#b"),
        ssh_key_of("ssh-ed25519", "ключ 鍵 🔑"),
        format!("{} ", ssh_key_of("ssh-ed25519", "trailing-space")),
    ]);
    create(&api, "ssh-ok", with_keys(accepted.clone()))
        .await
        .unwrap_or_else(|e| panic!("{accepted:?} are valid keys: {e}"));

    let ed = ssh_key_of("ssh-ed25519", "");
    let ed_body = ed.split(' ').nth(1).expect("body").to_owned();
    let refused: Vec<(&str, String)> = vec![
        ("U+2028", ssh_key_of("ssh-ed25519", "a\u{2028}runcmd: [id]")),
        ("U+2029", ssh_key_of("ssh-ed25519", "a\u{2029}b")),
        ("NEL", ssh_key_of("ssh-ed25519", "a\u{85}- ssh-rsa AAAA")),
        ("newline", ssh_key_of("ssh-ed25519", "a\nb")),
        ("carriage return", ssh_key_of("ssh-ed25519", "a\rb")),
        ("tab", ssh_key_of("ssh-ed25519", "a\tb")),
        ("NUL", ssh_key_of("ssh-ed25519", "a\u{0}b")),
        ("DEL", ssh_key_of("ssh-ed25519", "a\u{7f}b")),
        (
            "zero-width space (Cf)",
            ssh_key_of("ssh-ed25519", "a\u{200b}b"),
        ),
        (
            "bidi override (Cf)",
            ssh_key_of("ssh-ed25519", "a\u{202e}b"),
        ),
        ("BOM (Cf)", ssh_key_of("ssh-ed25519", "\u{feff}a")),
        ("U+FFFE", ssh_key_of("ssh-ed25519", "a\u{fffe}")),
        ("mapping", ssh_key_of("ssh-ed25519", "key: value")),
        ("trailing colon", ssh_key_of("ssh-ed25519", "trailing:")),
        ("yaml comment", ssh_key_of("ssh-ed25519", "a #b")),
        ("comment start", ssh_key_of("ssh-ed25519", "#b")),
        ("dsa", ssh_key_of("ssh-dss", "")),
        ("type mismatch", format!("ssh-rsa {ed_body}")),
        ("options", format!("command=\"id\" {ed}")),
        ("two spaces", format!("ssh-ed25519  {ed_body}")),
        ("bad padding", format!("ssh-ed25519 {ed_body}=")),
        (
            "not base64",
            format!("ssh-ed25519 {}", ed_body.replace('A', "-")),
        ),
        ("fake", "ssh-ed25519 AAAA".to_owned()),
    ];
    let mut verdicts = Verdicts::default();
    for (i, (case, key)) in refused.iter().enumerate() {
        let spec = with_keys(vec![accepted[0].clone(), key.clone()]);
        let answer = create(&api, &format!("ssh-bad-{i}"), spec).await;
        verdicts.refused(case, answer, true, &["spec.cloudInit.sshKeys[1]"]);
    }
    verdicts.assert_all_right();
}

#[tokio::test]
async fn admission_refuses_the_controllers_marker_tags_and_line_and_says_why() {
    let api = machine_requests("crd-marker").await;
    let uid = "0b9b1a2c-5d3e-4c8e-9f00-123456789abc";

    // (case, pointer into spec, value, field the message names)
    let refused: Vec<(&str, &str, Value, &str)> = vec![
        (
            "uid tag",
            "/tags",
            json!(["web", format!("mr-{uid}")]),
            "spec.tags",
        ),
        ("any mr- tag", "/tags", json!(["MR-anything"]), "spec.tags"),
        ("managed tag", "/tags", json!(["pve-operator"]), "spec.tags"),
        (
            "managed tag, other case",
            "/tags",
            json!(["PVE-Operator"]),
            "spec.tags",
        ),
        (
            "marker line",
            "/description",
            json!(format!(
                "notes\npve-operator: MachineRequest team-b/db uid={uid}"
            )),
            "spec.description",
        ),
        (
            "first line, other case, indented",
            "/description",
            json!("  \tPVE-OPERATOR: MachineRequest x"),
            "spec.description",
        ),
        (
            "after a Unicode line separator",
            "/description",
            json!("notes\u{2028}pve-operator: x"),
            "spec.description",
        ),
        (
            "after a carriage return",
            "/description",
            json!("notes\rpve-operator: x"),
            "spec.description",
        ),
        (
            "behind a no-break space",
            "/description",
            json!("notes\n\u{00a0}pve-operator: x"),
            "spec.description",
        ),
    ];
    let mut verdicts = Verdicts::default();
    for (i, (case, pointer, value, field)) in refused.iter().enumerate() {
        let answer = create(
            &api,
            &format!("marker-{i}"),
            valid_spec_with(pointer, value),
        )
        .await;
        verdicts.refused(case, answer, true, &[field, "reserved"]);
    }
    // What merely resembles the marker stays the user's.
    let accepted: Vec<(&str, &str, Value)> = vec![
        (
            "tags",
            "/tags",
            json!(["mr", "pve-operator2", "xmr-1", "web"]),
        ),
        (
            "prose",
            "/description",
            json!("managed by pve-operator: yes\npve-operator is the controller"),
        ),
    ];
    for (i, (case, pointer, value)) in accepted.iter().enumerate() {
        let answer = create(
            &api,
            &format!("resembles-{i}"),
            valid_spec_with(pointer, value),
        )
        .await;
        verdicts.accepted(case, answer);
    }
    verdicts.assert_all_right();
}
