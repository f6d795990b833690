//! Access control: a least-privilege token is told which privilege is missing on which path
//! (SDN on a bridge, an unknown pool, someone else's task) and, once granted, runs a VM's life.

use pve_client::PveError;
use pve_client::api::qemu::DeleteOptions;
use pve_client::api::vmconfig::{Nic, NicModel, VmConfig};
use pve_client::request::Method;

use crate::support::{
    Harness, NODE, create_and_wait, expect_err, run, small_vm, start_and_wait, stop_and_wait,
    update_sync,
};

#[tokio::test]
async fn a_least_privilege_token_is_told_which_privilege_is_missing_where() {
    let h = Harness::start().await;
    let root = h.root();
    let secret = h
        .create_user(
            &root,
            "omni@pve",
            "omni-password",
            &[
                ("/vms", "PVEVMAdmin"),
                ("/storage/local-lvm", "PVEDatastoreUser"),
            ],
            Some("omni-provider"),
        )
        .await
        .expect("secret");
    let omni = h.token_client("omni@pve!omni-provider", &secret);
    let perms = omni
        .permissions(Some("/vms/100"), None)
        .await
        .expect("own permissions");
    assert!(perms.has("/vms/100", "VM.Allocate"), "{perms:?}");
    let perms = omni
        .permissions(Some("/sdn/zones/localnetwork/vmbr0"), None)
        .await
        .expect("own permissions");
    assert!(
        !perms.has("/sdn/zones/localnetwork/vmbr0", "SDN.Use"),
        "{perms:?}"
    );

    // No SDN.Use on the bridge: the NIC is refused with path and privilege.
    let vm = small_vm("least-1");
    let e = expect_err(
        omni.qemu_create(NODE, 100, &vm, false).await,
        "NIC without SDN.Use",
    );
    match &e {
        PveError::PermissionDenied {
            path, privileges, ..
        } => {
            assert_eq!(
                path.as_deref(),
                Some("/sdn/zones/localnetwork/vmbr0"),
                "{e:?}"
            );
            assert_eq!(privileges, &["SDN.Use".to_owned()]);
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains("missing SDN.Use on /sdn/zones/localnetwork/vmbr0"),
        "{e}"
    );

    // An unknown pool is reported as such.
    let in_pool = VmConfig {
        pool: Some("nope".into()),
        ..small_vm("least-2")
    };
    let e = expect_err(
        omni.qemu_create(NODE, 100, &in_pool, false).await,
        "unknown pool",
    );
    assert!(
        matches!(&e, PveError::PermissionDenied { path: None, detail: Some(d), .. }
            if d == "pool 'nope' does not exist"),
        "{e:?}"
    );

    // With SDN.Use on the bridge (propagating to its VLANs) the same request passes, a
    // tagged NIC included, and the token can run the VM's whole life.
    Harness::raw(
        &root,
        Method::Put,
        "/access/acl",
        &[],
        &[
            ("path", "/sdn/zones/localnetwork/vmbr0"),
            ("roles", "PVESDNUser"),
            ("users", "omni@pve"),
            ("tokens", "omni@pve!omni-provider"),
        ],
    )
    .await
    .expect("grant SDN.Use");
    let tagged = small_vm("least-3").nic(0, Nic::new(NicModel::Virtio, "vmbr0").tag(42));
    create_and_wait(&omni, 100, &tagged).await;
    start_and_wait(&omni, 100).await;
    stop_and_wait(&omni, 100).await;
    // No SDN.Use on vmbr1.
    let e = expect_err(
        update_sync(
            &omni,
            100,
            &VmConfig::new().nic(1, Nic::new(NicModel::Virtio, "vmbr1")),
        )
        .await,
        "a second NIC on vmbr1",
    );
    assert!(
        matches!(&e, PveError::PermissionDenied { path: Some(p), .. } if p == "/sdn/zones/localnetwork/vmbr1"),
        "{e:?}"
    );
    run(
        &omni,
        omni.qemu_delete(NODE, 100, DeleteOptions::default())
            .await
            .expect("delete"),
    )
    .await;

    // Someone else's task: readable only with Sys.Audit on the node.
    let root_task = create_and_wait(&root, 101, &small_vm("roots")).await;
    let e = expect_err(omni.task_status(&root_task).await, "root's task");
    assert!(
        matches!(&e, PveError::PermissionDenied { path: Some(p), privileges, .. }
            if p == "/nodes/pve" && privileges == &["Sys.Audit".to_owned()]),
        "{e:?}"
    );
}
