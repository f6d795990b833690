//! `import-from` (`STORAGE:0,import-from=VOLID`) on create and on a config update: the new volume
//! has the source's size in the target's allocation unit, the config names it (no `import-from`
//! left), it resizes like any disk; the syntax, the source's type and the caller's access to the
//! source are checked as qemu-server does.

use pve_sim::access::AclSubject;
use pve_sim::version::PveVersion;
use reqwest::Method;

use crate::downloads::{IMAGE, content, download, start_downloads};
use crate::image_server::ImageServer;
use crate::support::{Api, create_vm_ok};

const SOURCE: &str = "local:import/disk.qcow2";

/// A simulator of `version` whose `local` storage holds [`SOURCE`] (downloaded from `server`).
async fn with_source(version: PveVersion, server: &ImageServer) -> (pve_sim::RunningSim, Api) {
    let (sim, api) = start_downloads(version).await;
    let url = server.url("disk.qcow2");
    let params = [
        ("url", url.as_str()),
        ("content", "import"),
        ("filename", "disk.qcow2"),
    ];
    assert_eq!(download(&api, "local", &params).await.1, "OK");
    (sim, api)
}

#[tokio::test]
async fn a_created_disk_imports_the_source_and_then_resizes_like_any_disk() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    for version in PveVersion::ALL {
        let (_sim, api) = with_source(version, &server).await;
        let lvm = format!("local-lvm:0,import-from={SOURCE},iothread=1");
        let nfs = format!("shared:0,import-from={SOURCE}");
        let exit = api
            .run_create("120", &[("scsi0", &lvm), ("scsi1", &nfs)])
            .await;
        assert_eq!(exit, "OK", "{version:?}");
        let config = api.get("/nodes/pve/qemu/120/config").await;
        // LVM allocates 4 MiB extents; a file storage KiB.
        assert_eq!(
            config["scsi0"],
            "local-lvm:vm-120-disk-0,iothread=1,size=4M"
        );
        assert_eq!(config["scsi1"], "shared:120/vm-120-disk-0.qcow2,size=1K");
        let disks = content(&api, "pve", "local-lvm", Some("images")).await;
        let disk = disks
            .iter()
            .find(|d| d["volid"] == "local-lvm:vm-120-disk-0")
            .expect("listed");
        assert_eq!(disk["size"], 4 << 20);
        assert_eq!(disk["vmid"], 120);
        api.run_ok(
            Method::PUT,
            "/nodes/pve/qemu/120/resize",
            &[("disk", "scsi0"), ("size", "+1G")],
        )
        .await;
        let config = api.get("/nodes/pve/qemu/120/config").await;
        assert_eq!(
            config["scsi0"],
            "local-lvm:vm-120-disk-0,iothread=1,size=1028M"
        );
        // The source stays.
        let imports = content(&api, "pve", "local", Some("import")).await;
        assert_eq!(imports.len(), 1);
    }
}

#[tokio::test]
async fn a_config_update_imports_a_new_disk() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (_sim, api) = with_source(PveVersion::Pve8_4, &server).await;
    create_vm_ok(&api, "121", &[]).await;
    let value = format!("local-lvm:0,import-from={SOURCE}");
    api.run_ok(
        Method::POST,
        "/nodes/pve/qemu/121/config",
        &[("scsi1", &value)],
    )
    .await;
    let config = api.get("/nodes/pve/qemu/121/config").await;
    assert_eq!(config["scsi1"], "local-lvm:vm-121-disk-1,size=4M");
    assert!(!config.to_string().contains("import-from"), "{config}");
}

#[tokio::test]
async fn bad_sources_are_refused_as_qemu_server_refuses_them() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (_sim, api) = with_source(PveVersion::Pve9_1, &server).await;
    let wrong_size = format!("local-lvm:4,import-from={SOURCE}");
    api.expect_param_error(
        Method::POST,
        "/nodes/pve/qemu",
        &[("vmid", "122"), ("scsi0", &wrong_size)],
        (
            "scsi0",
            "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
        ),
    )
    .await;
    api.expect_param_error(
        Method::POST,
        "/nodes/pve/qemu",
        &[
            ("vmid", "122"),
            ("scsi0", "local-lvm:0,import-from=local:iso/a.iso"),
        ],
        (
            "scsi0",
            "local:iso/a.iso has wrong type 'iso' - needs to be 'images' or 'import'",
        ),
    )
    .await;
    let exit = api
        .run_create(
            "122",
            &[("scsi0", "local-lvm:0,import-from=local:import/none.qcow2")],
        )
        .await;
    assert_eq!(
        exit,
        "unable to create VM 122 - volume 'local:import/none.qcow2' does not exist"
    );
    api.expect(Method::GET, "/nodes/pve/qemu/122/config", &[], 500)
        .await;
}

#[tokio::test]
async fn importing_needs_access_to_the_source() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (sim, api) = with_source(PveVersion::Pve9_1, &server).await;
    create_vm_ok(&api, "100", &[]).await;
    // carol may create VMs and allocate on local-lvm, but nothing on `local`.
    let carol = Api::login_with_new_password(&sim, "carol@pve", "pw-carol").await;
    let import = format!("local-lvm:0,import-from={SOURCE}");
    carol
        .expect_message(
            Method::POST,
            "/nodes/pve/qemu",
            &[("vmid", "130"), ("scsi0", &import)],
            (
                403,
                "Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)\n",
            ),
        )
        .await;
    carol
        .expect_message(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "130"),
                ("scsi0", "local-lvm:0,import-from=local-lvm:vm-100-disk-0"),
            ],
            (403, "Permission check failed (/vms/100, VM.Clone)\n"),
        )
        .await;
    carol
        .expect_message(
            Method::POST,
            "/nodes/pve/qemu",
            &[
                ("vmid", "130"),
                ("scsi0", "local-lvm:0,import-from=/var/lib/vz/x.raw"),
            ],
            (500, "Only root can pass arbitrary filesystem paths.\n"),
        )
        .await;
    sim.with_state(|s| {
        s.access.acl_modify(
            "/storage/local",
            AclSubject::User("carol@pve".into()),
            "PVEAuditor",
            true,
        )
    })
    .expect("acl");
    let exit = carol.run_create("130", &[("scsi0", &import)]).await;
    assert_eq!(exit, "OK");
}
