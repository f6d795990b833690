//! Access control: lists filtered by privileges, create's checks (storage, bridge, per-option
//! privileges, root-only options), `VM.Allocate` through a pool, and who may see which task.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, create_vm_ok, start, start_root, urlencode};

#[tokio::test]
async fn cluster_resources_and_vm_lists_are_filtered_by_privileges() {
    let (sim, root) = start_root().await;
    create_vm_ok(&root, "100", &[]).await;
    create_vm_ok(&root, "110", &[]).await;
    let alice = Api::login_with_new_password(&sim, "alice@pve", "alicepw").await;
    let vms = alice.get("/cluster/resources?type=vm").await;
    let ids: Vec<Value> = vms
        .as_array()
        .map(|v| v.iter().map(|e| e["vmid"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![json!(100)]);
    let nodes = alice.get("/cluster/resources?type=node").await;
    assert_eq!(nodes[0]["node"], "pve");
    assert!(
        nodes[0].get("maxmem").is_none(),
        "no node stats without Sys.Audit"
    );
    assert_eq!(
        alice.get("/cluster/resources?type=storage").await,
        json!([])
    );
    let listed = alice.get("/nodes/pve/qemu").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let all = root.get("/cluster/resources").await;
    let types: BTreeSet<String> = all
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        types,
        // 9.1 (the default): SDN zones are `network` entries.
        ["network", "node", "pool", "qemu", "storage"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let body = alice
        .expect(Method::GET, "/cluster/resources", &[("type", "pool")], 400)
        .await;
    assert!(
        body["errors"]["type"]
            .as_str()
            .unwrap_or_default()
            .contains("enumeration")
    );
}

#[tokio::test]
async fn create_checks_allocate_storage_bridge_and_per_option_privileges() {
    let sim = start().await;
    let carol = Api::login_with_new_password(&sim, "carol@pve", "carolpw").await;
    let alice = Api::login_with_new_password(&sim, "alice@pve", "alicepw").await;
    alice
        .expect_message(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "100")],
            (403, "Permission check failed\n"),
        )
        .await;
    // `affinity` is root-only too (in no option list of $check_vm_modify_config_perm).
    for (option, value, refusal) in [
        (
            "scsi0",
            "local:8",
            (
                403,
                "Permission check failed (/storage/local, Datastore.AllocateSpace)\n",
            ),
        ),
        (
            "net0",
            "virtio,bridge=vmbr1",
            (
                403,
                "Permission check failed (/sdn/zones/localnetwork/vmbr1, SDN.Use)\n",
            ),
        ),
        (
            "vga",
            "std",
            (
                403,
                "Permission check failed (/vms/130, VM.Config.HWType)\n",
            ),
        ),
        ("args", "-foo", (500, "only root can set 'args' config\n")),
        (
            "affinity",
            "0-1",
            (500, "only root can set 'affinity' config\n"),
        ),
    ] {
        let params = [("vmid", "130"), (option, value)];
        carol
            .expect_message(Method::POST, "/nodes/pve/qemu", &params, refusal)
            .await;
    }
    // 9.1's `allow-ksm` is a memory option: VM.Config.Memory, which carol has, suffices.
    let allow_ksm = [("vmid", "131"), ("allow-ksm", "0")];
    carol
        .expect(Method::POST, "/nodes/pve/qemu", &allow_ksm, 200)
        .await;
    let allowed = [
        ("memory", "1024"),
        ("cores", "1"),
        ("scsi0", "local-lvm:4"),
        ("net0", "virtio,bridge=vmbr0"),
    ];
    assert_eq!(carol.run_create("130", &allowed).await, "OK");
    carol
        .expect_param_error(
            Method::POST,
            "/nodes/pve/qemu/130/status/start",
            &[("skiplock", "1")],
            ("skiplock", "Only root may use this option."),
        )
        .await;
}

#[tokio::test]
async fn vm_allocate_on_a_pool_lets_a_user_create_vms_in_that_pool() {
    let sim = start().await;
    let dave = Api::login_with_new_password(&sim, "dave@pve", "davepw").await;
    let pools: Vec<Value> = dave
        .get("/cluster/resources")
        .await
        .as_array()
        .map(|l| l.iter().filter(|e| e["type"] == "pool").cloned().collect())
        .unwrap_or_default();
    assert_eq!(pools, Vec::<Value>::new(), "pool entries need Pool.Audit");
    dave.expect_message(
        Method::POST,
        "/nodes/pve/qemu",
        &[("vmid", "180"), ("pool", "nope")],
        (
            403,
            "Permission check failed (pool 'nope' does not exist)\n",
        ),
    )
    .await;
    // No VM.Allocate on /vms/180 without the pool.
    let no_pool = [("vmid", "180"), ("cores", "2")];
    dave.expect(Method::POST, "/nodes/pve/qemu", &no_pool, 403)
        .await;
    let in_pool = [("pool", "dev"), ("cores", "2"), ("scsi0", "local-lvm:2")];
    assert_eq!(dave.run_create("180", &in_pool).await, "OK");
    let vms = dave.get("/cluster/resources?type=vm").await;
    assert_eq!(vms.as_array().map(Vec::len), Some(1), "{vms}");
    assert_eq!(vms[0]["pool"], "dev");
    dave.vm_action_ok("180", "start").await;
}

#[tokio::test]
async fn tasks_are_visible_to_their_owner_or_with_sys_audit() {
    let sim = start().await;
    let carol = Api::login_with_new_password(&sim, "carol@pve", "carolpw").await;
    let alice = Api::login_with_new_password(&sim, "alice@pve", "alicepw").await;
    let root = Api::root(&sim).await;
    let upid = carol.start_create("131", &[("scsi0", "local-lvm:1")]).await;
    assert!(upid.ends_with(":qmcreate:131:carol@pve:"));
    let status_path = format!("/nodes/pve/tasks/{}/status", urlencode(&upid));
    alice
        .expect_message(
            Method::GET,
            &status_path,
            &[],
            (403, "Permission check failed (/nodes/pve, Sys.Audit)\n"),
        )
        .await;
    let status = carol.wait_task(&upid).await;
    assert_eq!(status["user"], "carol@pve");
    assert_eq!(status["id"], json!("131"));
    assert!(status.get("endtime").is_none());
    root.wait_task(&upid).await;
    root.expect_param_error(
        Method::GET,
        "/nodes/pve/tasks/not-a-upid/status",
        &[],
        ("upid", "unable to parse worker upid"),
    )
    .await;
    let cluster = carol.get("/cluster/tasks").await;
    assert_eq!(cluster.as_array().map(Vec::len), Some(1), "{cluster}");
    assert_eq!(cluster[0]["upid"], json!(upid));
    assert_eq!(cluster[0]["status"], "OK");
    assert_eq!(
        alice.get("/cluster/tasks").await,
        json!([]),
        "others' tasks are hidden"
    );
    let list = carol.call(Method::GET, "/nodes/pve/tasks", &[]).await.1;
    assert_eq!(list["total"], json!(1));
    assert_eq!(
        alice.call(Method::GET, "/nodes/pve/tasks", &[]).await.1["total"],
        json!(0)
    );
}
