//! Reading values as Proxmox writes them.

use crate::vmspec::wire::{DriveView, decode_sshkeys, normalise_description, parse_size_bytes};

#[test]
fn sizes_read_in_every_unit_proxmox_writes() {
    assert_eq!(parse_size_bytes("32G"), Some(32 << 30));
    assert_eq!(parse_size_bytes("512M"), Some(512 << 20));
    assert_eq!(parse_size_bytes("4M"), Some(4 << 20));
    assert_eq!(parse_size_bytes("1T"), Some(1 << 40));
    assert_eq!(parse_size_bytes("528K"), Some(528 << 10));
    assert_eq!(parse_size_bytes("10737418240"), Some(10 << 30));
    assert_eq!(parse_size_bytes("2.5G"), Some(5 << 29));
    assert_eq!(parse_size_bytes("G"), None);
    assert_eq!(parse_size_bytes("lots"), None);
}

#[test]
fn drives_are_classified_as_disk_cd_rom_or_cloud_init_drive() {
    let disk =
        DriveView::parse("local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G").expect("drive");
    assert_eq!(disk.storage(), Some("local-lvm"));
    assert!(!disk.is_cdrom() && !disk.is_cloudinit());
    assert!(disk.discard() && disk.flag("iothread") && !disk.flag("ssd"));
    assert_eq!(disk.cache(), "none");
    let linked =
        DriveView::parse("local-lvm:base-9000-disk-0/vm-101-disk-0,size=2G").expect("drive");
    assert_eq!(linked.storage(), Some("local-lvm"));
    for ci in [
        "local-lvm:vm-100-cloudinit,media=cdrom",
        "local:100/vm-100-cloudinit.qcow2,media=cdrom",
    ] {
        let v = DriveView::parse(ci).expect("drive");
        assert!(v.is_cdrom() && v.is_cloudinit(), "{ci}");
    }
    let iso = DriveView::parse("local:iso/debian-12.iso,media=cdrom").expect("drive");
    assert!(iso.is_cdrom() && !iso.is_cloudinit());
    let file_key = DriveView::parse("file=local-lvm:vm-100-disk-0,size=8G").expect("drive");
    assert_eq!(file_key.volume, "local-lvm:vm-100-disk-0");
}

#[test]
fn ssh_keys_decode_from_any_percent_encoding_into_trimmed_lines() {
    assert_eq!(
        decode_sshkeys("ssh-ed25519%20AAAA%2b%2F%3D%20a%40b%0A%0d%0Assh-rsa%20BBBB%20c"),
        ["ssh-ed25519 AAAA+/= a@b", "ssh-rsa BBBB c"]
    );
    assert_eq!(
        decode_sshkeys("100%25%zz"),
        ["100%%zz"],
        "bad escapes stay as they are"
    );
    assert!(decode_sshkeys("").is_empty());
}

#[test]
fn descriptions_compare_without_the_trailing_newline_proxmox_adds() {
    assert_eq!(normalise_description("a\r\n\r\nb\n\n"), "a\n\nb");
}
