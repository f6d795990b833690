//! Cluster resource mappings: `/cluster/mapping/{pci,usb}` lists only what the caller may see,
//! and passthrough in a VM config follows qemu-server's rule: a mapped device needs
//! `Mapping.Use` on `/mapping/<kind>/<id>` (and `VM.Config.HWType`), a real host device root.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, USER_CFG, fast_config, start_root_with};

/// The test users, plus `gpu@pve`: VM creator on /vms, storage and bridge use, `VM.Config.HWType`,
/// and `PVEMappingUser` on the PCI mapping `gpu_a` and the USB mapping `key` only.
fn config() -> pve_sim::ClusterConfig {
    let mut cfg = fast_config();
    cfg.user_cfg = Some(format!(
        "{USER_CFG}\
user:gpu@pve:1:0:::::
role:HwCreator:VM.Allocate,VM.Audit,VM.Config.Disk,VM.Config.HWType,VM.Config.Memory,VM.Config.Network:
acl:1:/vms:gpu@pve:HwCreator:
acl:1:/storage/local-lvm:gpu@pve:PVEDatastoreUser:
acl:1:/sdn/zones/localnetwork/vmbr0:gpu@pve:PVESDNUser:
acl:1:/mapping/pci/gpu_a:gpu@pve:PVEMappingUser:
acl:1:/mapping/usb/key:gpu@pve:PVEMappingUser:
"
    ));
    cfg.mappings.pci = vec![
        pve_sim::MappingConfig {
            id: "gpu_a".into(),
            description: Some("A4000".into()),
            map: vec!["node=pve,path=0000:01:00.0,id=10de:24b0".into()],
            mdev: false,
        },
        pve_sim::MappingConfig {
            id: "gpu_b".into(),
            description: None,
            map: vec!["node=pve,path=0000:02:00.0,id=10de:24b0".into()],
            mdev: false,
        },
    ];
    cfg.mappings.usb = vec![pve_sim::MappingConfig {
        id: "key".into(),
        description: None,
        map: vec!["node=pve,id=1050:0407".into()],
        mdev: false,
    }];
    cfg
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|l| l.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn mapping_lists_show_only_the_mappings_the_caller_may_see() {
    let (sim, root) = start_root_with(config()).await;
    let pci = root.get("/cluster/mapping/pci").await;
    assert_eq!(ids(&pci), ["gpu_a", "gpu_b"]);
    assert_eq!(
        pci[0],
        json!({"id": "gpu_a", "description": "A4000", "map": ["node=pve,path=0000:01:00.0,id=10de:24b0"]})
    );
    let gpu = Api::login_with_new_password(&sim, "gpu@pve", "gpupw").await;
    assert_eq!(ids(&gpu.get("/cluster/mapping/pci").await), ["gpu_a"]);
    assert_eq!(ids(&gpu.get("/cluster/mapping/usb").await), ["key"]);
    let alice = Api::login_with_new_password(&sim, "alice@pve", "alicepw").await;
    assert!(ids(&alice.get("/cluster/mapping/pci").await).is_empty());
}

#[tokio::test]
async fn a_mapped_device_needs_mapping_use_and_a_real_one_needs_root() {
    let (sim, root) = start_root_with(config()).await;
    let gpu = Api::login_with_new_password(&sim, "gpu@pve", "gpupw").await;
    let create = |vmid: &'static str, key: &'static str, value: &'static str| {
        [("vmid", vmid), ("memory", "1024"), (key, value)]
    };
    let cases = [
        (
            create("120", "hostpci0", "mapping=gpu_b"),
            (
                403,
                "Permission check failed (/mapping/pci/gpu_b, Mapping.Use)\n",
            ),
        ),
        (
            create("121", "hostpci0", "0000:01:00.0"),
            (
                500,
                "only root can set 'hostpci0' config for real devices\n",
            ),
        ),
        (
            create("122", "hostpci1", "host=0000:01:00.0,pcie=1"),
            (
                500,
                "only root can set 'hostpci1' config for real devices\n",
            ),
        ),
        (
            create("123", "usb0", "host=1050:0407"),
            (500, "only root can set 'usb0' config for real devices\n"),
        ),
        (
            create("124", "usb0", "mapping=other"),
            (
                403,
                "Permission check failed (/mapping/usb/other, Mapping.Use)\n",
            ),
        ),
    ];
    for (params, refusal) in &cases {
        gpu.expect_message(Method::POST, "/nodes/pve/qemu", params, *refusal)
            .await;
    }
    // Granted mappings pass, on create and on a config update.
    let exit = gpu
        .run_create(
            "130",
            &[("memory", "1024"), ("hostpci0", "mapping=gpu_a,pcie=1")],
        )
        .await;
    assert_eq!(exit, "OK");
    gpu.expect(
        Method::PUT,
        "/nodes/pve/qemu/130/config",
        &[("usb1", "mapping=key,usb3=1")],
        200,
    )
    .await;
    let conf = root.get("/nodes/pve/qemu/130/config").await;
    assert_eq!(conf["hostpci0"], "mapping=gpu_a,pcie=1");
    assert_eq!(conf["usb1"], "mapping=key,usb3=1");
    // Root may pass a real device through.
    let exit = root
        .run_create("131", &[("memory", "1024"), ("hostpci0", "0000:01:00.0")])
        .await;
    assert_eq!(exit, "OK");
}

#[tokio::test]
async fn a_start_fails_as_qemu_server_does_when_a_mapping_has_no_device_on_the_node() {
    let mut cfg = config();
    cfg.mappings.pci.push(pve_sim::MappingConfig {
        id: "gpu_elsewhere".into(),
        description: None,
        map: vec!["node=pve2,path=0000:01:00.0,id=10de:24b0".into()],
        mdev: false,
    });
    let (_sim, root) = start_root_with(cfg).await;
    let cases = [
        (
            "140",
            "hostpci0",
            "mapping=gpu_elsewhere",
            "PCI device mapping not found for 'gpu_elsewhere'",
        ),
        (
            "141",
            "hostpci0",
            "mapping=gpu_gone",
            "PCI device mapping not found for 'gpu_gone'",
        ),
        (
            "142",
            "usb0",
            "mapping=key_gone",
            "USB device mapping not found for 'key_gone'",
        ),
        (
            "143",
            "hostpci0",
            "mapping=gpu_a,pcie=1",
            "q35 machine model is not enabled",
        ),
    ];
    for (vmid, key, value, message) in cases {
        let exit = root
            .run_create(vmid, &[("memory", "1024"), (key, value)])
            .await;
        assert_eq!(
            exit, "OK",
            "{vmid}: the config is accepted; only the start fails"
        );
        let exit = root.vm_action(vmid, "start").await;
        assert!(exit.starts_with(message), "{vmid}: {exit}");
        let status = root
            .get(&format!("/nodes/pve/qemu/{vmid}/status/current"))
            .await;
        assert_eq!(status["status"], "stopped", "{vmid}");
    }
    let exit = root
        .run_create(
            "144",
            &[
                ("memory", "1024"),
                ("machine", "q35"),
                ("hostpci0", "mapping=gpu_a,pcie=1"),
                ("usb0", "mapping=key"),
            ],
        )
        .await;
    assert_eq!(exit, "OK");
    assert_eq!(root.vm_action("144", "start").await, "OK");
}
