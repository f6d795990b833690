//! An image from a URL, end to end against the simulator: `download_url` from a loopback HTTP
//! server with a checksum, the file in the storage content, a VM disk imported from it
//! (`STORAGE:0,import-from=VOLID`), and `delete_volume` removing the file again.

use pve_client::ExitStatus;
use pve_client::api::download::{Checksum, ChecksumAlgorithm, DownloadContent, DownloadUrl};
use pve_client::api::vmconfig::{Disk, DiskSlot, Drive, VmConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Harness, NODE, create_and_wait, fast_cluster, fast_wait};

const IMAGE: &[u8] = b"a small disk image for the import test";

/// Serves `IMAGE` to every request on a loopback port; returns the port.
async fn serve_image() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                IMAGE.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
            let _ = conn.write_all(IMAGE).await;
        }
    });
    port
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_downloaded_image_becomes_a_vm_disk_and_is_deleted_afterwards() {
    let mut cfg = fast_cluster();
    if let Some(local) = cfg.storages.iter_mut().find(|s| s.id == "local") {
        local.content.push("import".into());
    }
    let h = Harness::start_with(cfg).await;
    let client = h.root();
    let port = serve_image().await;
    let d = DownloadUrl {
        url: format!("http://127.0.0.1:{port}/debian-12.qcow2"),
        filename: "debian-12.qcow2".into(),
        content: DownloadContent::Import,
        checksum: Some(Checksum {
            algorithm: ChecksumAlgorithm::Sha256,
            hex: sha256_hex(IMAGE),
        }),
        verify_certificates: None,
    };
    let upid = client.download_url(NODE, "local", &d).await.unwrap();
    assert_eq!(upid.task_type, "download");
    assert_eq!(
        client.wait_task(&upid, &fast_wait()).await.unwrap(),
        ExitStatus::Ok
    );
    let volid = DownloadContent::Import.volume_id("local", "debian-12.qcow2");
    let files = client
        .storage_content(NODE, "local", Some("import"), None)
        .await
        .unwrap();
    let file = files.iter().find(|v| v.volid == volid).expect("listed");
    assert_eq!(file.size, Some(IMAGE.len() as u64));

    let vm = VmConfig::new().drive(
        DiskSlot::scsi(0).unwrap(),
        Drive::Disk(Disk::import("local-lvm", &volid)),
    );
    create_and_wait(&client, 140, &vm).await;
    let config = client.qemu_config(NODE, 140).await.unwrap();
    assert_eq!(config.get("scsi0"), Some("local-lvm:vm-140-disk-0,size=4M"));

    let upid = client.delete_volume(NODE, "local", &volid).await.unwrap();
    assert_eq!(upid.task_type, "imgdel");
    assert_eq!(
        client.wait_task(&upid, &fast_wait()).await.unwrap(),
        ExitStatus::Ok
    );
    let files = client
        .storage_content(NODE, "local", Some("import"), None)
        .await
        .unwrap();
    assert!(files.is_empty(), "{files:?}");
}
