//! A VM's whole life through the typed API: create with disks, NICs and cloud-init, the config as
//! Proxmox rewrote it, digest-locked and asynchronous updates, resize, power, guest-agent
//! addresses, pending changes, purge; and linked and full clones of the template, found by tag.

use std::net::Ipv4Addr;

use pve_client::api::cluster::ResourceType;
use pve_client::api::qemu::{
    CloneOptions, DeleteOptions, DiskSize, ShutdownOptions, VmConfigUpdate,
};
use pve_client::api::vmconfig::{
    AgentConfig, Disk, DiskSlot, Drive, IpConfig, Ipv4Config, Nic, NicModel, ScsiHw, VmConfig,
};
use pve_client::{PveClient, PveError};

use crate::support::{
    Harness, ISO, NODE, SSH_KEY, create_and_wait, expect_err, expect_start_to_fail, fast_cluster,
    percent_decode, run, start_and_wait, stop_and_wait, update_sync,
};

fn full_vm(uuid: &str) -> VmConfig {
    VmConfig {
        name: Some("web-1".into()),
        cores: Some(2),
        sockets: Some(1),
        cpu: Some("x86-64-v2-AES".into()),
        memory_mib: Some(2048),
        balloon_mib: Some(1024),
        scsihw: Some(ScsiHw::VirtioScsiSingle),
        ciuser: Some("ops".into()),
        sshkeys: vec![SSH_KEY.into()],
        nameservers: vec!["192.0.2.53".parse().expect("ip")],
        searchdomain: Some("example.com".into()),
        boot_order: vec!["scsi0".into(), "ide2".into(), "net0".into()],
        ostype: Some("l26".into()),
        agent: Some(AgentConfig {
            enabled: true,
            fstrim_cloned_disks: None,
        }),
        tags: vec!["pve-operator".into(), "team-a".into()],
        description: Some("owned by pve-operator\nuid: 1234".into()),
        smbios_uuid: Some(uuid.into()),
        onboot: Some(false),
        ..VmConfig::default()
    }
    .drive(
        DiskSlot::scsi(0).expect("scsi0"),
        Drive::Disk(
            Disk::new("local-lvm", 8.0)
                .discard(true)
                .iothread(true)
                .ssd(true),
        ),
    )
    .drive(
        DiskSlot::virtio(1).expect("virtio1"),
        Drive::Disk(Disk::new("local-lvm", 2.0)),
    )
    .drive(DiskSlot::ide(2).expect("ide2"), Drive::CdromIso(ISO.into()))
    .drive(
        DiskSlot::ide(0).expect("ide0"),
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
        Nic::new(NicModel::E1000, "vmbr1").macaddr("BC:24:11:00:00:01"),
    )
    .ipconfig(
        0,
        IpConfig {
            ipv4: Some(Ipv4Config::Static {
                cidr: "192.0.2.10/24".into(),
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            }),
            ipv6: None,
        },
    )
}

/// The `status` (`running`, `stopped`) of `vmid`.
async fn status_of(root: &PveClient, vmid: u32) -> String {
    root.qemu_status(NODE, vmid).await.expect("status").status
}

/// The memory of `vmid` in MiB: the pending value, or with `current` the active one.
async fn memory_mib(root: &PveClient, vmid: u32, current: bool) -> Option<u64> {
    let cfg = if current {
        root.qemu_config_current(NODE, vmid).await
    } else {
        root.qemu_config(NODE, vmid).await
    };
    cfg.expect("config").memory_mib()
}

/// A synchronous update of `vmid` to `cores`, on the condition that its config still has `digest`.
async fn set_cores_if_digest(
    root: &PveClient,
    vmid: u32,
    cores: u32,
    digest: &str,
) -> Result<(), PveError> {
    let vm = VmConfig {
        cores: Some(cores),
        ..VmConfig::default()
    };
    let update = VmConfigUpdate::set(&vm)?.digest(digest)?;
    root.qemu_update_sync(NODE, vmid, &update).await
}

#[tokio::test]
async fn vm_lifecycle_create_configure_resize_power_agent_and_purge() {
    // A guest that boots for a minute of the simulator's clock: the test decides when it has
    // booted (by advancing that clock), not how fast this machine runs the steps in between.
    let mut cluster = fast_cluster();
    cluster.agent_boot_delay_ms = 60_000;
    let h = Harness::start_with(cluster).await;
    let root = h.root();
    let uuid = "5b0f6a9e-3c2d-4e1f-9a8b-7c6d5e4f3a2b";

    let vmid = root.next_vmid().await.expect("nextid");
    assert_eq!(vmid, 100, "the first free VMID");
    let upid = create_and_wait(&root, vmid, &full_vm(uuid)).await;
    assert_eq!(upid.task_type, "qmcreate");
    assert_eq!(upid.id, vmid.to_string());
    assert_eq!(upid.node, NODE);

    // The config as Proxmox rewrote it.
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_eq!(cfg.digest.len(), 40, "SHA-1 digest: {cfg:?}");
    assert!(cfg.digest.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(cfg.lock(), None);
    assert_eq!(cfg.get("name"), Some("web-1"));
    assert_eq!(cfg.get_u64("cores"), Some(2));
    assert_eq!(cfg.memory_mib(), Some(2048));
    assert_eq!(cfg.get_u64("balloon"), Some(1024));
    assert_eq!(cfg.get("scsihw"), Some("virtio-scsi-single"));
    assert_eq!(cfg.get("ostype"), Some("l26"));
    assert_eq!(cfg.get("boot"), Some("order=scsi0;ide2;net0"));
    assert_eq!(cfg.get("ciuser"), Some("ops"));
    assert_eq!(cfg.get("ipconfig0"), Some("ip=192.0.2.10/24,gw=192.0.2.1"));
    assert_eq!(cfg.get("searchdomain"), Some("example.com"));
    assert_eq!(cfg.smbios_uuid().as_deref(), Some(uuid));
    assert_eq!(cfg.tags(), ["pve-operator", "team-a"]);
    assert_eq!(
        cfg.get("description"),
        Some("owned by pve-operator\nuid: 1234")
    );
    let keys = percent_decode(cfg.get("sshkeys").expect("sshkeys stored"));
    assert_eq!(keys.trim_end(), SSH_KEY, "sshkeys round-trip URL-encoded");
    let nics = cfg.nics();
    assert_eq!(nics[&0].model, NicModel::Virtio);
    assert_eq!(nics[&0].bridge, "vmbr0");
    assert_eq!(nics[&0].tag, Some(10));
    assert_eq!(nics[&0].firewall, Some(true));
    let mac0 = nics[&0].macaddr.clone().expect("a generated MAC");
    assert!(mac0.starts_with("BC:24:11:"), "Proxmox OUI: {mac0}");
    assert_eq!(nics[&1].macaddr.as_deref(), Some("BC:24:11:00:00:01"));
    let drives = cfg.drives();
    let slot = |s: &str| DiskSlot::parse(s).expect("slot");
    assert_eq!(
        drives[&slot("scsi0")],
        (format!("local-lvm:vm-{vmid}-disk-0"), Some("8G".to_owned()))
    );
    assert_eq!(drives[&slot("virtio1")].1.as_deref(), Some("2G"));
    assert_eq!(drives[&slot("ide2")].0, ISO);
    assert_eq!(
        drives[&slot("ide0")].0,
        format!("local-lvm:vm-{vmid}-cloudinit")
    );
    let scsi0 = cfg.get("scsi0").expect("scsi0");
    for opt in ["discard=on", "iothread=1", "ssd=1"] {
        assert!(scsi0.contains(opt), "{scsi0} keeps {opt}");
    }

    // Optimistic locking: an update with the current digest passes, a stale digest does not.
    let stale = cfg.digest.clone();
    set_cores_if_digest(&root, vmid, 4, &stale)
        .await
        .expect("update with the current digest");
    let e = expect_err(
        set_cores_if_digest(&root, vmid, 8, &stale).await,
        "update with a stale digest",
    );
    assert!(matches!(e, PveError::DigestMismatch { .. }), "{e:?}");
    assert!(!e.is_retryable(), "re-read, don't retry blindly");
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_ne!(cfg.digest, stale, "the digest changed with the write");
    assert_eq!(
        cfg.get_u64("cores"),
        Some(4),
        "the stale update did nothing"
    );

    // Async update (POST, a qmconfig task) deleting a key.
    let task = root
        .qemu_update_async(
            NODE,
            vmid,
            &VmConfigUpdate::set(&VmConfig {
                description: Some("updated".into()),
                ..VmConfig::default()
            })
            .and_then(|u| u.delete(["net1"]))
            .and_then(|u| u.digest(&cfg.digest))
            .expect("a valid update"),
        )
        .await
        .expect("async update");
    let task = task.expect("PVE 8 returns a qmconfig UPID");
    assert_eq!(task.task_type, "qmconfig");
    run(&root, task).await;
    let cfg = root.qemu_config(NODE, vmid).await.expect("config");
    assert_eq!(cfg.get("description"), Some("updated"));
    assert_eq!(cfg.get("net1"), None);

    // Resize is a task in PVE 8.
    let task = root
        .qemu_resize(NODE, vmid, slot("scsi0"), DiskSize::GrowGib(2), None)
        .await
        .expect("resize")
        .expect("a resize UPID");
    assert_eq!(task.task_type, "resize");
    run(&root, task).await;
    let drives = root.qemu_config(NODE, vmid).await.expect("config").drives();
    assert_eq!(drives[&slot("scsi0")].1.as_deref(), Some("10G"));

    // Power on; the agent reports the cloud-init address on the NIC's MAC.
    let status = root.qemu_status(NODE, vmid).await.expect("status");
    assert_eq!(status.status, "stopped");
    start_and_wait(&root, vmid).await;
    let status = root.qemu_status(NODE, vmid).await.expect("status");
    assert!(status.is_running(), "{status:?}");
    assert_eq!(status.agent, Some(true));
    assert!(status.pid.is_some());
    // While the guest boots, PVE answers that the agent is not running: retry later.
    let booting = root
        .qemu_agent_network(NODE, vmid)
        .await
        .expect_err("the agent does not answer right after start");
    assert!(
        booting.is_retryable(),
        "a booting guest's agent is worth waiting for: {booting}"
    );
    assert!(
        booting
            .to_string()
            .contains("QEMU guest agent is not running"),
        "{booting}"
    );
    h.sim.with_state(|s| s.clock_offset_ms += 61_000); // the guest has booted
    let ifaces = root
        .qemu_agent_network(NODE, vmid)
        .await
        .expect("agent network-get-interfaces");
    let eth = ifaces
        .iter()
        .find(|i| {
            i.hardware_address
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(&mac0))
        })
        .unwrap_or_else(|| panic!("an interface with MAC {mac0}: {ifaces:?}"));
    assert!(
        eth.ip_addresses
            .iter()
            .any(|a| a.ip_address == "192.0.2.10" && a.prefix == Some(24)),
        "{eth:?}"
    );

    // A running VM cannot be deleted.
    let e = expect_err(
        root.qemu_delete(NODE, vmid, DeleteOptions::default()).await,
        "delete a running VM",
    );
    assert!(matches!(e, PveError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("is running - destroy failed"), "{e}");

    // Memory is not hot-pluggable by default: the change stays pending until the VM stops.
    update_sync(
        &root,
        vmid,
        &VmConfig {
            memory_mib: Some(4096),
            ..VmConfig::default()
        },
    )
    .await
    .expect("update of a running VM");
    let pending = root.qemu_pending(NODE, vmid).await.expect("pending");
    let mem = pending
        .iter()
        .find(|p| p.key == "memory")
        .expect("memory in the pending list");
    assert_eq!(mem.value.as_deref(), Some("2048"));
    assert_eq!(mem.pending.as_deref(), Some("4096"));
    assert_eq!(
        memory_mib(&root, vmid, false).await,
        Some(4096),
        "config shows pending values"
    );
    assert_eq!(
        memory_mib(&root, vmid, true).await,
        Some(2048),
        "current=1 shows the active value"
    );

    run(
        &root,
        root.qemu_shutdown(
            NODE,
            vmid,
            &ShutdownOptions {
                timeout: Some(30),
                force_stop: Some(true),
            },
        )
        .await
        .expect("shutdown"),
    )
    .await;
    assert_eq!(status_of(&root, vmid).await, "stopped");
    assert_eq!(
        memory_mib(&root, vmid, true).await,
        Some(4096),
        "pending applied at shutdown"
    );
    assert!(
        root.qemu_pending(NODE, vmid)
            .await
            .expect("pending")
            .iter()
            .all(|p| p.pending.is_none()),
        "nothing pending after shutdown"
    );

    start_and_wait(&root, vmid).await;
    stop_and_wait(&root, vmid).await;
    assert_eq!(status_of(&root, vmid).await, "stopped");

    // Delete with purge; the VM is gone everywhere.
    let task = root
        .qemu_delete(NODE, vmid, DeleteOptions::default())
        .await
        .expect("delete");
    assert_eq!(task.task_type, "qmdestroy");
    run(&root, task).await;
    let e = expect_err(root.qemu_config(NODE, vmid).await, "config of a deleted VM");
    assert!(matches!(e, PveError::NotFound { .. }), "{e:?}");
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    assert!(vms.iter().all(|r| r.vmid != Some(vmid)), "{vms:?}");
    assert!(root.vmid_is_free(vmid).await.expect("nextid?vmid"));
}

#[tokio::test]
async fn clones_from_the_template_are_linked_or_full_and_tagged_in_the_inventory() {
    let h = Harness::start().await;
    let root = h.root();
    let linked_id = root.next_vmid().await.expect("nextid");
    let task = root
        .qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: linked_id,
                name: Some("linked-1".into()),
                full: false,
                storage: None,
                target: None,
                pool: None,
                description: None,
            },
        )
        .await
        .expect("linked clone");
    assert_eq!(task.task_type, "qmclone");
    assert_eq!(task.id, "9000", "a clone task's id is the SOURCE vmid");
    run(&root, task).await;
    let full_id = root.next_vmid().await.expect("nextid");
    assert_ne!(full_id, linked_id);
    let task = root
        .qemu_clone(
            NODE,
            9000,
            &CloneOptions {
                newid: full_id,
                name: Some("full-1".into()),
                full: true,
                storage: Some("local-lvm".into()),
                target: None,
                pool: None,
                description: None,
            },
        )
        .await
        .expect("full clone");
    run(&root, task).await;

    let scsi0 = |cfg: &pve_client::api::vmconfig::VmConfigView| {
        cfg.drives()[&DiskSlot::scsi(0).expect("scsi0")].0.clone()
    };
    let linked = root.qemu_config(NODE, linked_id).await.expect("linked cfg");
    assert_eq!(
        scsi0(&linked),
        format!("local-lvm:base-9000-disk-0/vm-{linked_id}-disk-0")
    );
    assert_eq!(linked.get("name"), Some("linked-1"));
    let full = root.qemu_config(NODE, full_id).await.expect("full cfg");
    assert_eq!(scsi0(&full), format!("local-lvm:vm-{full_id}-disk-0"));
    let template = root.qemu_config(NODE, 9000).await.expect("template cfg");
    assert_ne!(
        full.smbios_uuid(),
        template.smbios_uuid(),
        "a clone gets its own SMBIOS uuid"
    );

    // Tag the clone (updates normalise tags) and find it in the inventory by tag.
    update_sync(
        &root,
        full_id,
        &VmConfig {
            tags: vec!["Team-B".into(), "pve-operator".into()],
            ..VmConfig::default()
        },
    )
    .await
    .expect("tag update");
    let vms = root
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .expect("resources");
    let tagged: Vec<u32> = vms
        .iter()
        .filter(|r| r.has_tag("pve-operator"))
        .filter_map(|r| r.vmid)
        .collect();
    assert_eq!(tagged, [full_id]);
    let entry = vms.iter().find(|r| r.vmid == Some(full_id)).expect("entry");
    assert_eq!(entry.tags.as_deref(), Some("pve-operator;team-b"));

    // Templates cannot start: the task fails.
    let e = expect_start_to_fail(&root, 9000, "starting a template").await;
    assert!(matches!(e, PveError::TaskFailed { .. }), "{e:?}");
}
