//! Volume allocation on simulated storages, with capacity limits.

use crate::qemu::drive::{Drive, format_size};
use crate::state::{SimState, Volume};

/// Allocates the drive `value` of option `key` for `vmid` on `node` if it requests a new disk
/// (`STORAGE:SIZE`) or a cloud-init drive; returns the value to store and whether a volume was
/// created. Existing volumes are checked and kept.
pub fn allocate_disk(
    state: &mut SimState,
    vmid: u32,
    node: &str,
    key: &str,
    value: &str,
    default_storage: Option<&str>,
) -> Result<(String, bool), String> {
    let Some(mut drive) = Drive::parse(key, value) else {
        return Err(format!("unable to parse drive options '{value}'"));
    };
    if drive.file == "none" || drive.file == "cdrom" {
        return Ok((value.to_string(), false));
    }
    if drive.file.ends_with(":cloudinit") {
        let storage = drive.storage().unwrap_or("").to_string();
        check_storage(state, &storage, node)?;
        let path_based = state
            .config
            .storage(&storage)
            .is_some_and(|s| s.is_path_based());
        let volid = if path_based {
            format!("{storage}:{vmid}/vm-{vmid}-cloudinit.qcow2")
        } else {
            format!("{storage}:vm-{vmid}-cloudinit")
        };
        add_volume(state, &storage, node, &volid, 4 << 20, vmid, "images")?;
        drive.file = volid;
        drive.opts.insert("media".into(), "cdrom".into());
        return Ok((drive.print(), true));
    }
    if let Some((storage, size)) = drive.new_disk(default_storage) {
        let storage = storage
            .ok_or_else(|| "no storage ID specified (and no default storage)".to_string())?;
        check_storage(state, &storage, node)?;
        // `import-from` is gone from the stored drive: it names the new volume instead.
        let import_from = drive.opts.remove("import-from");
        let size = if key == "efidisk0" {
            efi_vars_size(
                state,
                &storage,
                drive.opts.get("efitype").map(String::as_str),
            )
        } else if key == "tpmstate0" {
            // qemu-server allocates the TPM state at a fixed 4 MiB, whatever size is given.
            TPM_STATE_SIZE
        } else if let Some(src) = &import_from {
            crate::qemu::import::imported_size(state, src, node, &storage)?
        } else {
            size
        };
        let n = next_disk_number(state, &storage, vmid);
        let mut volid = state.volume_name(&storage, vmid, "vm", n);
        if key == "tpmstate0" {
            // "swtpm can only use raw volumes" (qemu-server's create_disks): a path-based
            // storage gets a .raw file, not its default qcow2.
            if let Some(stem) = volid.strip_suffix(".qcow2") {
                volid = format!("{stem}.raw");
            }
        }
        add_volume(state, &storage, node, &volid, size, vmid, "images")?;
        drive.file = volid;
        drive.opts.insert("size".into(), format_size(size));
        return Ok((drive.print(), true));
    }
    if state.volume(&drive.file, node).is_none() {
        let storage = drive.storage().unwrap_or("").to_string();
        if state.config.storage(&storage).is_none() {
            return Err(format!("storage '{storage}' does not exist"));
        }
        // A missing CD-ROM image is only noticed when QEMU starts; a missing disk at once.
        if !drive.is_cdrom() {
            return Err(format!("volume '{}' does not exist", drive.file));
        }
    }
    Ok((value.to_string(), false))
}

/// The size of a TPM state volume (`tpmstate0`).
const TPM_STATE_SIZE: u64 = 4 << 20;

/// The size of a new EFI vars disk: the size given is ignored (`create_efidisk` allocates the
/// OVMF vars template's size: 528 KiB for `efitype=4m`, 128 KiB for the 2m default), and LVM
/// rounds a volume up to its 4 MiB extents, so LVM-thin configs read `size=4M`.
fn efi_vars_size(state: &SimState, storage: &str, efitype: Option<&str>) -> u64 {
    let vars: u64 = if efitype == Some("4m") {
        540_672
    } else {
        131_072
    };
    let lvm = state
        .config
        .storage(storage)
        .is_some_and(|s| matches!(s.r#type.as_str(), "lvm" | "lvmthin"));
    if lvm {
        vars.div_ceil(4 << 20) * (4 << 20)
    } else {
        vars
    }
}

fn check_storage(state: &SimState, storage: &str, node: &str) -> Result<(), String> {
    let s = state
        .config
        .storage(storage)
        .ok_or_else(|| format!("storage '{storage}' does not exist"))?;
    if !s.on_node(node) {
        return Err(format!(
            "storage '{storage}' is not available on node '{node}'"
        ));
    }
    if !s.content.iter().any(|c| c == "images") {
        return Err(format!("storage '{storage}' does not support vm images"));
    }
    Ok(())
}

fn next_disk_number(state: &SimState, storage: &str, vmid: u32) -> u32 {
    let prefix = format!("-{vmid}-disk-");
    state
        .volumes
        .iter()
        .filter(|v| v.storage == storage && v.vmid == Some(vmid))
        .filter_map(|v| {
            let tail = v.volid.rsplit_once(&prefix)?.1;
            tail.trim_end_matches(".qcow2").parse::<u32>().ok()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0)
}

fn add_volume(
    state: &mut SimState,
    storage: &str,
    node: &str,
    volid: &str,
    size: u64,
    vmid: u32,
    content: &str,
) -> Result<(), String> {
    let capacity = state
        .config
        .storage(storage)
        .map(|s| s.capacity.0)
        .unwrap_or(0);
    let used = state.storage_used(storage, node);
    if used.saturating_add(size) > capacity {
        return Err(format!(
            "storage '{storage}' does not have enough free space (requested {}, available {})",
            format_size(size),
            format_size(capacity.saturating_sub(used))
        ));
    }
    let format = state.image_format(storage).to_string();
    let node = state.volume_node(storage, node);
    state.volumes.push(Volume {
        volid: volid.to_string(),
        storage: storage.to_string(),
        node,
        size,
        vmid: Some(vmid),
        content: content.to_string(),
        format,
    });
    Ok(())
}

/// A linked clone of a template's disk: `storage:base-<src>-disk-0/vm-<new>-disk-<n>`.
pub fn linked_clone_disk(
    state: &mut SimState,
    newid: u32,
    node: &str,
    base: &Drive,
    size: u64,
) -> Result<String, String> {
    let storage = base.storage().unwrap_or("").to_string();
    let base_name = base.file.split_once(':').map(|(_, n)| n).unwrap_or("");
    let base_name = base_name
        .rsplit('/')
        .next()
        .unwrap_or(base_name)
        .trim_end_matches(".qcow2");
    let n = next_disk_number(state, &storage, newid);
    let volid = if state
        .config
        .storage(&storage)
        .is_some_and(|s| s.is_path_based())
    {
        let src = base.file.split_once(':').map(|(_, n)| n).unwrap_or("");
        format!(
            "{storage}:{}/{newid}/vm-{newid}-disk-{n}.qcow2",
            src.split('/').next().unwrap_or("")
        )
    } else {
        format!("{storage}:{base_name}/vm-{newid}-disk-{n}")
    };
    add_volume(state, &storage, node, &volid, 0, newid, "images")?;
    if let Some(v) = state.volumes.iter_mut().find(|v| v.volid == volid) {
        v.size = size;
    }
    let mut d = base.clone();
    d.file = volid;
    d.opts.insert("size".into(), format_size(size));
    Ok(d.print())
}

/// Frees the volumes of `vmid` referenced by its config (and, with `all`, every volume owned by it).
pub fn free_vm_volumes(state: &mut SimState, vmid: u32, all: bool) {
    let referenced: Vec<String> = state
        .vms
        .get(&vmid)
        .map(|vm| {
            vm.conf
                .iter()
                .filter_map(|(k, v)| {
                    if crate::qemu::drive::is_unused_key(k) {
                        Some(v.clone())
                    } else {
                        Drive::parse(k, v).map(|d| d.file)
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    state
        .volumes
        .retain(|v| !(v.vmid == Some(vmid) && (all || referenced.contains(&v.volid))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClusterConfig, Size, StorageConfig};

    fn state() -> SimState {
        let mut cfg = ClusterConfig::default();
        cfg.storages.push(StorageConfig {
            id: "nfs".into(),
            r#type: "nfs".into(),
            content: vec!["images".into()],
            capacity: Size(10 << 30),
            shared: true,
            nodes: None,
        });
        SimState::new(cfg, "pw", 1_700_000_000_000).expect("state")
    }

    #[test]
    fn path_based_storages_get_qcow2_files_in_a_vmid_directory() {
        let mut s = state();
        let (v, created) = allocate_disk(&mut s, 100, "pve", "scsi0", "nfs:4,discard=on", None)
            .expect("allocated");
        assert!(created);
        assert_eq!(v, "nfs:100/vm-100-disk-0.qcow2,discard=on,size=4G");
        let (v, _) = allocate_disk(&mut s, 100, "pve", "scsi1", "nfs:1", None).expect("allocated");
        assert_eq!(v, "nfs:100/vm-100-disk-1.qcow2,size=1G");
        assert_eq!(
            s.storage_used("nfs", "other-node"),
            5 << 30,
            "shared storage counts everywhere"
        );
    }

    #[test]
    fn storages_without_images_and_full_storages_are_refused() {
        let mut s = state();
        let err = allocate_disk(&mut s, 100, "pve", "scsi0", "local:4", None);
        assert_eq!(
            err,
            Err("storage 'local' does not support vm images".to_string())
        );
        let err = allocate_disk(&mut s, 100, "pve", "scsi0", "nfs:11", None)
            .err()
            .unwrap_or_default();
        assert!(err.contains("does not have enough free space"), "{err}");
        assert!(
            s.volumes.iter().all(|v| v.vmid != Some(100)),
            "nothing allocated"
        );
    }

    #[test]
    fn cloud_init_drives_are_named_after_the_vm() {
        let mut s = state();
        let (v, _) = allocate_disk(&mut s, 101, "pve", "ide2", "local-lvm:cloudinit", None)
            .expect("allocated");
        assert_eq!(v, "local-lvm:vm-101-cloudinit,media=cdrom");
    }

    #[test]
    fn an_efi_disk_has_the_ovmf_vars_size_whatever_size_is_asked() {
        let mut s = state();
        let (efi, _) = allocate_disk(
            &mut s,
            102,
            "pve",
            "efidisk0",
            "local-lvm:1,efitype=4m",
            None,
        )
        .expect("allocated");
        assert_eq!(
            efi, "local-lvm:vm-102-disk-0,efitype=4m,size=4M",
            "LVM rounds up to 4 MiB"
        );
        let (efi, _) = allocate_disk(&mut s, 102, "pve", "efidisk0", "nfs:1,efitype=4m", None)
            .expect("allocated");
        assert_eq!(efi, "nfs:102/vm-102-disk-0.qcow2,efitype=4m,size=528K");
    }

    #[test]
    fn a_tpm_state_is_4_mib_and_raw_whatever_size_is_asked() {
        let mut s = state();
        let (tpm, _) = allocate_disk(
            &mut s,
            103,
            "pve",
            "tpmstate0",
            "local-lvm:1,version=v2.0",
            None,
        )
        .expect("allocated");
        assert_eq!(tpm, "local-lvm:vm-103-disk-0,size=4M,version=v2.0");
        let (tpm, _) =
            allocate_disk(&mut s, 103, "pve", "tpmstate0", "nfs:1", None).expect("allocated");
        assert_eq!(tpm, "nfs:103/vm-103-disk-0.raw,size=4M");
    }
}
