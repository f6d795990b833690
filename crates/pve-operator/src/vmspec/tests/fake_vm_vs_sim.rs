//! [`FakeVm`], the unit tests' model of how Proxmox stores a config, held to pve-sim (which is
//! held to real Proxmox): the same create and the same update plans, sent to both, must read back
//! alike, apart from what Proxmox makes up (MACs, disk numbers' timing, `meta`, `vmgenid`, the
//! digest). When this fails, the model has drifted and the unit tests built on it test nothing.

use std::collections::BTreeMap;

use pve_client::api::tasks::WaitOptions;
use pve_client::api::vmconfig::VmConfigView;
use pve_client::{PveClient, PveConfig};
use pve_operator_api::machine_request::MachineRequestSpec;
use pve_sim::{SimOptions, SimServer};

use super::fixtures::*;

/// What Proxmox invents per VM, not part of the model's contract.
const INVENTED: &[&str] = &["digest", "meta", "vmgenid", "smbios1"];

const NODE: &str = "pve";

/// `values` without the invented keys, MAC addresses replaced by `MAC`.
fn comparable(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .filter(|(k, _)| !INVENTED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), without_macs(v)))
        .collect()
}

fn without_macs(value: &str) -> String {
    value
        .split(',')
        .map(|part| match part.split_once('=') {
            Some((key, mac)) if mac.len() == 17 && mac.matches(':').count() == 5 => {
                format!("{key}=MAC")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn wait(pve: &PveClient, upid: Option<pve_client::Upid>) {
    if let Some(upid) = upid {
        pve.wait_task(&upid, &WaitOptions::default())
            .await
            .expect("task succeeds");
    }
}

async fn read(pve: &PveClient, vmid: u32) -> VmConfigView {
    pve.qemu_config(NODE, vmid).await.expect("config read")
}

/// Creates `spec` in the model and in pve-sim, compares, then applies `changed`'s plan to both
/// and compares again.
async fn create_and_update_alike(
    pve: &PveClient,
    vmid: u32,
    spec: MachineRequestSpec,
    changed: MachineRequestSpec,
) {
    let (m, name) = (marker(), "web-1");
    let config = create_config(&spec, &m, name).expect("valid spec");
    let mut fake = FakeVm::create(vmid, &config);
    let upid = pve
        .qemu_create(NODE, vmid, &config, false)
        .await
        .expect("create accepted");
    wait(pve, Some(upid)).await;
    let real = read(pve, vmid).await;
    assert_eq!(
        comparable(&fake.values),
        comparable(&real.values),
        "VM {vmid} after create: model (left) and pve-sim (right) differ"
    );

    // The same plan, made on each side's own read-back, applied to each.
    let plan = plan_update(&changed, &m, name, &real).expect("plan");
    let fake_plan = plan_update(&changed, &m, name, &fake.view()).expect("plan");
    assert_eq!(
        (plan.changed_keys(), &plan.resizes),
        (fake_plan.changed_keys(), &fake_plan.resizes),
        "VM {vmid}: the model's config plans differently from pve-sim's"
    );
    fake.apply(&fake_plan);
    pve.qemu_update_sync(NODE, vmid, plan.update())
        .await
        .expect("update accepted");
    for (slot, gib) in &plan.resizes {
        let size = pve_client::api::qemu::DiskSize::AbsoluteGib(*gib);
        let upid = pve
            .qemu_resize(NODE, vmid, *slot, size, None)
            .await
            .expect("resize accepted");
        wait(pve, upid).await;
    }
    let real = read(pve, vmid).await;
    assert_eq!(
        comparable(&fake.values),
        comparable(&real.values),
        "VM {vmid} after the update: model (left) and pve-sim (right) differ"
    );
    let again = plan_update(&changed, &m, name, &real).expect("plan");
    assert!(
        again.is_in_sync(),
        "VM {vmid}: not in sync after the update: {again:?}"
    );
}

#[tokio::test]
async fn the_model_of_proxmox_reads_back_like_pve_sim_after_create_and_update() {
    // The model is of PVE 8.4, which stores tags verbatim on create (9.1.17+ normalises them).
    let mut options = SimOptions::new("pw");
    options.config.pve_version = pve_sim::PveVersion::Pve8_4;
    let sim = SimServer::start(options).await.expect("simulator");
    let config = PveConfig::from_yaml_str(&sim.root_config_yaml()).expect("config");
    let pve = PveClient::new(&config).expect("client");

    let mut grown = small_iso();
    grown.disks[0].size_gib = 40;
    grown.cpu.cores = 4;
    grown.tags = vec!["Web".into(), "prod".into()];
    create_and_update_alike(&pve, 200, small_iso(), grown).await;

    let mut more = stopped_pxe();
    more.memory.size_mib = 2048;
    more.description = Some("a PXE-booted machine".into());
    create_and_update_alike(&pve, 201, stopped_pxe(), more).await;

    let mut uefi = ovmf();
    uefi.start_on_boot = true;
    create_and_update_alike(&pve, 202, ovmf(), uefi.clone()).await;
    // A TPM added to a UEFI VM that had none.
    create_and_update_alike(&pve, 204, ovmf(), ovmf_with_tpm()).await;

    // Several disks and NICs with cloud-init (without the pool, which this simulator lacks, and on its storage for images):
    // a NIC is removed and a disk added.
    let mut multi = multi_disk_multi_nic();
    multi.pool = None;
    for disk in &mut multi.disks {
        disk.storage = "local-lvm".into(); // the default simulator's only storage for images
    }
    multi.boot.iso = small_iso().boot.iso;
    let mut fewer = multi.clone();
    fewer.networks.truncate(1);
    fewer
        .cloud_init
        .as_mut()
        .expect("cloud-init")
        .ip_configs
        .truncate(1);
    create_and_update_alike(&pve, 203, multi, fewer).await;
    sim.shutdown().await;
}
