use super::*;
use crate::api::vmconfig::{DiskSlot, VmConfig};
use crate::error::PveError;

#[test]
fn create_adds_vmid_pool_and_start() {
    let cfg = VmConfig {
        cores: Some(2),
        pool: Some("team-a".into()),
        ..VmConfig::default()
    };
    let r = create_request("pve", 100, &cfg, true).unwrap();
    assert_eq!(r.path, "/nodes/pve/qemu");
    assert_eq!(
        r.params.form_encode(),
        "vmid=100&cores=2&pool=team-a&start=1"
    );
    assert!(create_request("pve", 99, &cfg, false).is_err());
    let bad_pool = VmConfig {
        pool: Some("a b".into()),
        ..VmConfig::default()
    };
    assert!(
        matches!(create_request("pve", 100, &bad_pool, false), Err(PveError::InvalidInput { field, .. }) if field == "pool")
    );
    assert!(
        matches!(bad_pool.encode(), Err(PveError::InvalidInput { field, .. }) if field == "pool"),
        "encoding ahead refuses what the call would"
    );
}

#[test]
fn a_config_encoded_ahead_is_sent_as_the_config_itself_would_be() {
    let cfg = VmConfig {
        cores: Some(2),
        name: Some("web-1".into()),
        pool: Some("team-a".into()),
        ..VmConfig::default()
    };
    let encoded = cfg.encode().unwrap();
    assert_eq!(encoded.keys().collect::<Vec<_>>(), ["name", "cores"]);
    assert_eq!(encoded.pool(), Some("team-a"));
    assert_eq!(
        create_request("pve", 100, &encoded, false).unwrap().params,
        create_request("pve", 100, &cfg, false).unwrap().params
    );
    let update = VmConfig {
        cores: Some(4),
        ..VmConfig::default()
    };
    assert_eq!(
        VmConfigUpdate::set(&update.encode().unwrap()).unwrap(),
        VmConfigUpdate::set(&update).unwrap()
    );
}

#[test]
fn update_carries_digest_and_delete_and_refuses_contradictions() {
    let cfg = VmConfig {
        memory_mib: Some(4096),
        ..VmConfig::default()
    };
    let upd = VmConfigUpdate::set(&cfg)
        .and_then(|u| u.delete(["net1", "ide2"]))
        .and_then(|u| u.digest("5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1"))
        .unwrap();
    let r = update_request("pve", 100, &upd, false).unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(
        r.params.form_encode(),
        "memory=4096&delete=net1%2Cide2&digest=5b2cbf7e0a7a7a6d0f3a2e9bd1c1b7e2c5f0f3c1"
    );
    assert_eq!(
        update_request("pve", 100, &upd, true).unwrap().method,
        Method::Put
    );
    let both = VmConfigUpdate::set(&cfg).unwrap().delete(["memory"]);
    assert!(
        both.unwrap_err()
            .to_string()
            .contains("both set and deleted")
    );
    let evil = VmConfigUpdate::default().delete(["net1,args"]);
    assert!(evil.unwrap_err().to_string().contains("not a config key"));
    let evil = VmConfigUpdate::default().revert(["cores&args=-x"]);
    assert!(evil.unwrap_err().to_string().contains("not a config key"));
    let stale = VmConfigUpdate::default().digest("not-a-digest");
    assert!(
        stale
            .unwrap_err()
            .to_string()
            .contains("not a config digest")
    );
    let empty = VmConfigUpdate::set(&VmConfig::default()).unwrap();
    assert!(update_request("pve", 100, &empty, true).is_err());
    let pool = VmConfig {
        pool: Some("p".into()),
        cores: Some(1),
        ..VmConfig::default()
    };
    assert!(VmConfigUpdate::set(&pool).is_err());
}

#[test]
fn delete_purges_and_destroys_unreferenced_disks_by_default() {
    let r = delete_request("pve", 100, DeleteOptions::default()).unwrap();
    assert_eq!(r.method, Method::Delete);
    assert_eq!(r.path, "/nodes/pve/qemu/100");
    assert_eq!(
        r.params.form_encode(),
        "purge=1&destroy-unreferenced-disks=1"
    );
}

#[test]
fn clone_and_resize_requests() {
    let linked = CloneOptions {
        newid: 101,
        name: Some("clone-1".into()),
        full: false,
        storage: None,
        target: None,
        pool: None,
        description: None,
    };
    let r = clone_request("pve", 9000, &linked).unwrap();
    assert_eq!(r.params.form_encode(), "newid=101&name=clone-1&full=0");
    let bad = CloneOptions {
        storage: Some("local-lvm".into()),
        ..linked.clone()
    };
    assert!(clone_request("pve", 9000, &bad).is_err());
    let same = CloneOptions {
        newid: 9000,
        ..linked
    };
    assert!(clone_request("pve", 9000, &same).is_err());
    let r = resize_request(
        "pve",
        100,
        DiskSlot::scsi(0).unwrap(),
        DiskSize::GrowGib(10),
        None,
    )
    .unwrap();
    assert_eq!(r.params.form_encode(), "disk=scsi0&size=%2B10G");
    assert_eq!(r.method, Method::Put);
    assert!(
        resize_request(
            "pve",
            100,
            DiskSlot::scsi(0).unwrap(),
            DiskSize::AbsoluteGib(0),
            None
        )
        .is_err()
    );
}

#[test]
fn status_and_agent_shapes_decode() {
    let s: QemuStatus = serde_json::from_str(
        r#"{"vmid":101,"status":"running","qmpstatus":"running","name":"vm","cpus":2,"maxmem":2147483648,"maxdisk":34359738368,"disk":0,"mem":123,"cpu":0.01,"uptime":50,"netin":1,"netout":2,"ha":{"managed":0},"pid":1234,"running-qemu":"8.0.2","running-machine":"pc-i440fx-8.0+pve0","agent":1}"#,
    )
    .unwrap();
    assert!(s.is_running());
    assert_eq!(s.agent, Some(true));
    assert_eq!(s.lock, None);
    let paused: QemuStatus = serde_json::from_str(
        r#"{"vmid":"101","status":"running","qmpstatus":"paused","lock":"backup"}"#,
    )
    .unwrap();
    assert!(!paused.is_running());
    assert_eq!(paused.lock.as_deref(), Some("backup"));
    let a: AgentNetworkInterfaces = serde_json::from_str(
        r#"{"result":[{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},{"name":"eth0","hardware-address":"bc:24:11:2e:3f:40","ip-addresses":[{"ip-address":"192.0.2.10","ip-address-type":"ipv4","prefix":24},{"ip-address":"fe80::1","ip-address-type":"ipv6","prefix":64}],"statistics":{"rx-bytes":1}}]}"#,
    )
    .unwrap();
    assert_eq!(a.result[1].ip_addresses[0].ip_address, "192.0.2.10");
    let pending: Vec<PendingEntry> = serde_json::from_str(
        r#"[{"key":"memory","value":"2048","pending":"4096"},{"key":"cores","value":2},{"key":"net1","value":"x","delete":1}]"#,
    )
    .unwrap();
    assert_eq!(pending[1].value.as_deref(), Some("2"));
    assert_eq!(pending[2].delete, Some(1));
}
