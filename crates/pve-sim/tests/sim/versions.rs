//! What differs between PVE 8.4 and 9.1 (pve9-changes.md, sections 4.2 and 6): parameters new in
//! or dropped by 9.1, the texts of errors, guest-agent and CPU-model privileges, `start=1` on
//! create, tag normalisation, POST config's flock timeout as a task failure, the `network` and
//! `sdn` entries of cluster resources, and 9.1's unified authentication failures.

use pve_sim::RunningSim;
use pve_sim::config::ClusterConfig;
use pve_sim::version::PveVersion;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, USER_CFG, assert_unified_auth_failures, create_vm, create_vm_ok, entry_where, fast_config,
    lock_timeout, raw_get, sim_get, sim_put, start_root_with, start_version, start_with,
};

const NOT_IN_SCHEMA: &str =
    "property is not defined in schema and the schema does not allow additional properties";

#[tokio::test]
async fn disk_geometry_options_are_refused_by_9_1_and_accepted_by_8_4() {
    let (_old, api8) = start_version(PveVersion::Pve8_4).await;
    assert_eq!(
        create_vm(&api8, "120", &[("scsi0", "local-lvm:8,cyls=1")]).await,
        "OK"
    );
    let config = api8.get("/nodes/pve/qemu/120/config").await;
    assert_eq!(config["scsi0"], "local-lvm:vm-120-disk-0,cyls=1,size=8G");

    let (_new, api9) = start_version(PveVersion::Pve9_1).await;
    for (key, value, option) in [
        ("scsi0", "local-lvm:8,cyls=1", "cyls"),
        ("virtio0", "local-lvm:8,heads=16", "heads"),
        ("sata0", "local-lvm:8,secs=63", "secs"),
        ("ide0", "local-lvm:8,trans=lba", "trans"),
    ] {
        let (code, body) = api9.try_create("120", &[(key, value)]).await;
        assert_eq!(code, 400, "{key}={value}: {body}");
        assert_eq!(body["message"], "Parameter verification failed.\n");
        assert_eq!(
            body["errors"][key],
            format!("invalid format - invalid key in comma-separated list property: {option}\n"),
            "{key}={value}"
        );
    }
    // No VM was created.
    api9.expect(Method::GET, "/nodes/pve/qemu/120/config", &[], 500)
        .await;
    assert_eq!(
        create_vm(&api9, "120", &[("scsi0", "local-lvm:8")]).await,
        "OK"
    );
}

#[tokio::test]
async fn options_new_in_9_1_are_accepted_by_9_1_and_unknown_to_8_4() {
    let new_options: [(&str, &str); 4] = [
        ("allow-ksm", "0"),
        ("ha-managed", "0"),
        ("agent", "1,freeze-fs=0"),
        ("tpmstate0", "local-lvm:1,format=raw,version=v2.0"),
    ];
    let (_old, api8) = start_version(PveVersion::Pve8_4).await;
    let (code, body) = api8.try_create("130", &new_options).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"]["allow-ksm"], NOT_IN_SCHEMA);
    assert_eq!(body["errors"]["ha-managed"], NOT_IN_SCHEMA);
    assert_eq!(
        body["errors"]["agent"],
        "invalid format - invalid key in comma-separated list property: freeze-fs\n"
    );
    assert_eq!(
        body["errors"]["tpmstate0"],
        "invalid format - invalid key in comma-separated list property: format\n"
    );
    let allow_ksm = [("allow-ksm", "0")];
    api8.expect_param_error(
        Method::PUT,
        "/nodes/pve/qemu/100/config",
        &allow_ksm,
        ("allow-ksm", NOT_IN_SCHEMA),
    )
    .await;

    let (_new, api9) = start_version(PveVersion::Pve9_1).await;
    assert_eq!(create_vm(&api9, "130", &new_options).await, "OK");
    let config = api9.get("/nodes/pve/qemu/130/config").await;
    assert_eq!(
        config["allow-ksm"],
        json!(0),
        "a boolean is a number: {config}"
    );
    assert_eq!(config["agent"], "1,freeze-fs=0");
    assert!(
        config.get("ha-managed").is_none(),
        "ha-managed is not a config option: {config}"
    );
    let ksm_on = [("allow-ksm", "1")];
    api9.run_ok(Method::POST, "/nodes/pve/qemu/130/config", &ksm_on)
        .await;
    assert_eq!(
        api9.get("/nodes/pve/qemu/130/config").await["allow-ksm"],
        json!(1)
    );
    // `ha-managed` is a create option only.
    api9.expect_param_error(
        Method::PUT,
        "/nodes/pve/qemu/130/config",
        &[("ha-managed", "1")],
        ("ha-managed", NOT_IN_SCHEMA),
    )
    .await;
}

#[tokio::test]
async fn the_requires_error_has_each_versions_text() {
    for (version, text) in [
        (
            PveVersion::Pve8_4,
            "missing property - 'force' requires this property",
        ),
        (PveVersion::Pve9_1, "missing property required by 'force'"),
    ] {
        let (_sim, api) = start_version(version).await;
        assert_eq!(create_vm(&api, "140", &[]).await, "OK", "{version}");
        for (path, option, missing, text) in [
            ("/nodes/pve/qemu/140/config", "force", "delete", text.into()),
            (
                "/access/users/root@pam",
                "append",
                "groups",
                text.replace("force", "append"),
            ),
        ] {
            let (code, body) = api.call(Method::PUT, path, &[(option, "1")]).await;
            assert_eq!(code, 400, "{version} {path}: {body}");
            assert_eq!(body["errors"][missing], text, "{version} {path}: {body}");
        }
    }
}

/// Users for the version tests: erin may only use the guest agent without restriction (a 9.1
/// privilege: 8.4 drops it from the role), frank may create VMs but not power them, carol may
/// use the CPU mappings.
const VERSION_USERS: &str = "\
user:erin@pve:1:0:::::
role:AgentOnly:VM.GuestAgent.Unrestricted:
acl:1:/vms:erin@pve:AgentOnly:
user:frank@pve:1:0:::::
role:NoPower:VM.Allocate,VM.Audit,VM.Config.Memory,VM.Config.Options:
acl:1:/vms:frank@pve:NoPower:
acl:1:/mapping/cpu:carol@pve:PVEMappingUser:
acl:1:/vms/100:frank@pve:PVEVMAdmin:
";

/// The fast configuration as `version`, with the version tests' users.
fn config_with_users(version: pve_sim::PveVersion) -> ClusterConfig {
    let mut cfg = fast_config();
    cfg.pve_version = version;
    cfg.user_cfg = Some(format!("{USER_CFG}{VERSION_USERS}"));
    cfg
}

/// Starts a `version` simulator with the version tests' users and logs in as root.
async fn start_with_users(version: PveVersion) -> (RunningSim, Api) {
    start_root_with(config_with_users(version)).await
}

/// Logs in `user@pve` after giving it a password.
async fn login_as(sim: &RunningSim, user: &str) -> Api {
    Api::login_with_new_password(sim, &format!("{user}@pve"), "pw-of-a-user").await
}

#[tokio::test]
async fn agent_calls_need_vm_monitor_on_8_4_and_a_guest_agent_privilege_on_9_1() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    let path = "/nodes/pve/qemu/100/agent/network-get-interfaces";
    let not_running = json!("VM 100 is not running\n");
    let denied = |privs: &str| json!(format!("Permission check failed (/vms/100, {privs})\n"));
    for version in [Pve8_4, Pve9_1] {
        let (sim, root) = start_with_users(version).await;
        create_vm_ok(&root, "100", &[("agent", "1")]).await;
        // alice: PVEVMUser on /vms/100 (VM.GuestAgent.Audit on 9.1, no VM.Monitor on 8.4);
        // carol: her own role without either; erin: VM.GuestAgent.Unrestricted only (9.1).
        let mut answers = Vec::new();
        for user in ["alice", "carol", "erin"] {
            let (code, body) = login_as(&sim, user)
                .await
                .call(Method::GET, path, &[])
                .await;
            answers.push((user, code, body["message"].clone()));
        }
        let expected = match version {
            Pve8_4 => vec![
                ("alice", 403, denied("VM.Monitor")),
                ("carol", 403, denied("VM.Monitor")),
                ("erin", 403, denied("VM.Monitor")),
            ],
            Pve9_1 => {
                let any = denied("VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted");
                vec![
                    ("alice", 500, not_running.clone()),
                    ("carol", 403, any),
                    ("erin", 500, not_running.clone()),
                ]
            }
        };
        assert_eq!(answers, expected, "{version}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn create_with_start_needs_power_mgmt_up_front_on_9_1_only() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let (sim, _root) = start_with_users(version).await;
        let frank = login_as(&sim, "frank").await;
        let params = [("memory", "512"), ("start", "1")];
        let (code, body) = frank.try_create("150", &params).await;
        match version {
            Pve8_4 => {
                assert_eq!(code, 200, "8.4's worker starts without the check: {body}");
                let upid = body["data"].as_str().unwrap_or_default();
                assert_eq!(frank.wait_task(upid).await["exitstatus"], "OK");
            }
            Pve9_1 => {
                assert_eq!(
                    (code, body["message"].clone()),
                    (
                        403,
                        json!("Permission check failed (/vms/150, VM.PowerMgmt)\n")
                    )
                );
                assert!(
                    sim.with_state(|s| !s.vms.contains_key(&150)),
                    "refused before anything was created"
                );
                let exit = frank.run_create("150", &[("memory", "512")]).await;
                assert_eq!(exit, "OK", "without start=1 VM.Allocate is enough");
            }
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn create_normalises_tags_on_9_1_and_stores_them_verbatim_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for (version, want) in [(Pve8_4, "Web;db;WEB"), (Pve9_1, "db;web")] {
        let (sim, root) = start_with_users(version).await;
        create_vm_ok(&root, "160", &[("tags", "Web;db;WEB")]).await;
        let config = root.get("/nodes/pve/qemu/160/config").await;
        assert_eq!(config["tags"], json!(want), "{version}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_custom_cpu_model_needs_mapping_use_on_9_1_and_sys_audit_on_nodes_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let (sim, _root) = start_with_users(version).await;
        // carol: VM.Config.CPU on /vms, PVEMappingUser on /mapping/cpu, no Sys.Audit on /nodes;
        // alice: PVEVMUser on /vms/100, which has no VM.Config.CPU.
        let carol = login_as(&sim, "carol").await;
        let fast_aes = [("cpu", "custom-fast,flags=+aes")];
        let (code, body) = carol.try_create("190", &fast_aes).await;
        match version {
            Pve8_4 => assert_eq!(
                (code, body["message"].clone()),
                (403, json!("Permission check failed (/nodes, Sys.Audit)\n"))
            ),
            Pve9_1 => {
                assert_eq!(code, 200, "the mapping ACL is enough: {body}");
                let upid = body["data"].as_str().unwrap_or_default();
                assert_eq!(carol.wait_task(upid).await["exitstatus"], "OK");
            }
        }
        sim.shutdown().await;
    }
    let (sim, root) = start_with_users(Pve9_1).await;
    create_vm_ok(&root, "100", &[("cpu", "custom-fast")]).await;
    // frank: PVEVMAdmin on /vms/100 (VM.Config.CPU), no CPU mapping; the model did not change.
    let frank = login_as(&sim, "frank").await;
    let config = "/nodes/pve/qemu/100/config";
    let fast_aes = [("cpu", "custom-fast,flags=+aes")];
    frank.expect(Method::PUT, config, &fast_aes, 200).await;
    let slow = [("cpu", "custom-slow")];
    let no_mapping = "Permission check failed (/mapping/cpu/slow, Mapping.Use)\n";
    frank
        .expect_message(Method::PUT, config, &slow, (403, no_mapping))
        .await;
    sim.shutdown().await;
}

/// A started VM 170 whose stop task holds its config flock far longer than the flock timeout.
async fn vm_with_a_long_held_flock(version: pve_sim::PveVersion) -> (RunningSim, Api) {
    let mut cfg = config_with_users(version);
    cfg.flock_timeout_ms = 300;
    cfg.task_durations_ms.stop = 60_000;
    let (sim, root) = start_root_with(cfg).await;
    create_vm_ok(&root, "170", &[("start", "1")]).await;
    root.upid(Method::POST, "/nodes/pve/qemu/170/status/stop", &[])
        .await;
    (sim, root)
}

#[tokio::test]
async fn post_config_flock_timeout_is_a_task_failure_on_9_1_and_a_500_on_8_4() {
    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve9_1).await;
    let path = "/nodes/pve/qemu/170/config";
    let cores = [("cores", "3")];
    let exit = root.run(Method::POST, path, &cores).await;
    assert_eq!(exit, lock_timeout("170"));
    // PUT still locks in the API worker.
    root.expect_lock_timeout(Method::PUT, path, &cores, "170")
        .await;
    let config = root.get(path).await;
    assert_eq!(config["cores"], json!(2), "nothing was changed");
    sim.shutdown().await;

    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve8_4).await;
    root.expect_lock_timeout(Method::POST, path, &cores, "170")
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn post_config_checks_still_answer_synchronously_on_9_1() {
    let (sim, root) = vm_with_a_long_held_flock(pve_sim::PveVersion::Pve9_1).await;
    let stale = [("cores", "3"), ("digest", "0000")];
    let mismatch = (500, "checksum mismatch (file change by other user?)\n");
    root.expect_message(Method::POST, "/nodes/pve/qemu/170/config", &stale, mismatch)
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lock_timeout_fault_on_post_config_fails_the_task_on_9_1() {
    let mut cfg = config_with_users(pve_sim::PveVersion::Pve9_1);
    cfg.flock_timeout_ms = 200;
    let (sim, root) = start_root_with(cfg).await;
    create_vm_ok(&root, "140", &[]).await;
    let faults = json!({"seed": 1, "rules": [
        {"method": "POST", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}},
        {"method": "PUT", "path": "/nodes/{node}/qemu/{vmid}/config", "max_count": 1, "fault": {"kind": "lock_timeout"}}
    ]});
    assert_eq!(sim_put(&sim, "/_sim/faults", &faults).await, 200);
    let path = "/nodes/pve/qemu/140/config";
    let cores = [("cores", "3")];
    let exit = root.run(Method::POST, path, &cores).await;
    assert_eq!(exit, lock_timeout("140"));
    let config = root.get(path).await;
    assert_eq!(config["cores"], json!(2), "the task changed nothing");
    root.expect_lock_timeout(Method::PUT, path, &cores, "140")
        .await;
    // The rule fired once.
    root.run_ok(Method::POST, path, &cores).await;
    assert_eq!(root.get(path).await["cores"], json!(3));
    assert_eq!(sim_get(&sim, "/_sim/faults").await["fired"], json!([1, 1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn cluster_resources_have_network_entries_and_memhost_on_9_1_and_sdn_entries_on_8_4() {
    use pve_sim::PveVersion::{Pve8_4, Pve9_1};
    for version in [Pve8_4, Pve9_1] {
        let (sim, root) = start_with_users(version).await;
        create_vm_ok(&root, "180", &[("start", "1")]).await;
        let all = root.get("/cluster/resources").await;
        let entries = all.as_array().cloned().unwrap_or_default();
        let of_type = |t: &str| -> Vec<Value> {
            entries.iter().filter(|e| e["type"] == t).cloned().collect()
        };
        let vm = root.get("/cluster/resources?type=vm").await;
        let vm180 = entry_where(&vm, "vmid", 180);
        let current = root.get("/nodes/pve/qemu/180/status/current").await;
        let listed = root.get("/nodes/pve/qemu").await;
        let listed180 = entry_where(&listed, "vmid", 180);
        let sdn = root.get("/cluster/resources?type=sdn").await;
        let (code, _) = root
            .call(Method::GET, "/cluster/resources", &[("type", "network")])
            .await;
        assert_eq!(code, 400, "{version}: the type enum has no 'network'");
        match version {
            Pve8_4 => {
                assert_eq!(of_type("network"), Vec::<Value>::new());
                assert_eq!(of_type("sdn").len(), 1);
                assert_eq!(sdn.as_array().map(Vec::len), Some(1));
                assert_eq!(sdn[0]["id"], "sdn/pve/localnetwork");
                for entry in [&vm180, &current, &listed180] {
                    assert!(entry.get("mem").is_some(), "{entry}");
                    assert!(
                        entry.get("memhost").is_none(),
                        "8.4 has no memhost: {entry}"
                    );
                }
            }
            Pve9_1 => {
                assert_eq!(of_type("sdn"), Vec::<Value>::new());
                assert_eq!(
                    of_type("network"),
                    vec![json!({
                        "id": "network/pve/zone/localnetwork",
                        "type": "network",
                        "network-type": "zone",
                        "network": "localnetwork",
                        "node": "pve",
                        "status": "ok",
                    })]
                );
                assert_eq!(sdn, json!([]), "upgraded nodes have no sdn entries");
                for entry in [&vm180, &current, &listed180] {
                    assert!(
                        entry["memhost"].as_u64().is_some_and(|m| m > 0),
                        "a running VM's memhost: {entry}"
                    );
                }
            }
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn network_entries_need_sdn_audit_on_the_zone() {
    let (sim, root) = start_with_users(PveVersion::Pve9_1).await;
    let networks = |all: &Value| {
        all.as_array()
            .map(|l| l.iter().filter(|e| e["type"] == "network").count())
    };
    assert_eq!(networks(&root.get("/cluster/resources").await), Some(1));
    // alice has PVEVMUser on /vms/100 only: no SDN.Audit on /sdn/zones/localnetwork.
    let alice = login_as(&sim, "alice").await;
    let all = alice.get("/cluster/resources").await;
    assert_eq!(networks(&all), Some(0), "{all}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pve9_answers_auth_failures_with_the_unified_text() {
    let sim = start_with(config_with_users(pve_sim::PveVersion::Pve9_1), true).await;
    assert_unified_auth_failures(&sim, "root@pam!nope=abc").await;
    let cookie = format!(
        "Cookie: PVEAuthCookie={}\r\n",
        Api::root(&sim).await.ticket()
    );
    let (_, _, _, body) = raw_get(&sim, "/version", &cookie).await;
    let version: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(version["data"]["release"], "9.1");
}
