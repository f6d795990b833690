//! `import-from` on a new disk (`STORAGE:0,import-from=SOURCE`, create and config update):
//! qemu-server's syntax rule, the source checks of `$check_storage_access` (the source must be a
//! disk image or an `import` volume; another VM's disk needs `VM.Clone` on that VM, any other
//! volume `check_volume_access`: `Datastore.Allocate`, or `Datastore.AllocateSpace` or
//! `Datastore.Audit` on its storage; an absolute path only root may give), and the size of the new
//! volume: the source's, rounded up to what the target storage allocates (`vdisk_alloc` gets KiB;
//! LVM rounds to its 4 MiB extents, RBD and ZFS to whole MiB).

use crate::error::ApiError;
use crate::qemu::drive::Drive;
use crate::router::Ctx;
use crate::state::SimState;
use crate::storage_files::paths;

/// The 400 of an `import-from` on anything but `<storage>:0`.
pub const SYNTAX: &str =
    "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>";

/// What an `import-from` names.
enum Source {
    /// A file system path (root only).
    Path,
    /// A volume of a storage.
    Volume {
        /// Its storage.
        storage: String,
        /// The VM whose disk it is.
        owner: Option<u32>,
    },
}

/// Classifies `src` of drive `key`: 500 for an unknown storage or a name it cannot parse, 400
/// (on `key`) for a volume that is neither a disk image nor an `import` volume (an ISO, say).
fn classify(state: &SimState, key: &str, src: &str) -> Result<Source, ApiError> {
    if src.starts_with('/') {
        return Ok(Source::Path);
    }
    let (storage, volname) = src.split_once(':').unwrap_or((src, ""));
    let s = crate::api::storage::known_storage(&state.config, storage)?;
    let parsed = paths::parse_volname(s, volname).map_err(ApiError::internal)?;
    if parsed.vtype != "images" && parsed.vtype != "import" {
        return Err(ApiError::param(
            key,
            format!(
                "{src} has wrong type '{}' - needs to be 'images' or 'import'",
                parsed.vtype
            ),
        ));
    }
    Ok(Source::Volume {
        storage: storage.to_string(),
        owner: parsed.owner.filter(|_| parsed.vtype == "images"),
    })
}

/// The synchronous checks of drive `key` that anyone's request gets: the `<storage>:0` syntax
/// and the source's type.
pub fn check_request(state: &SimState, key: &str, drive: &Drive) -> Result<(), ApiError> {
    let Some(src) = drive.opts.get("import-from") else {
        return Ok(());
    };
    let zero = drive.new_disk(Some("")).is_some_and(|(_, size)| size == 0);
    if !zero {
        return Err(ApiError::param(key, SYNTAX));
    }
    classify(state, key, src).map(|_| ())
}

/// The source's type, then the caller's access to it (root may read anything).
pub fn check_source(ctx: &Ctx<'_>, key: &str, src: &str) -> Result<(), ApiError> {
    let source = classify(&ctx.sim.state, key, src)?;
    if ctx.is_root() {
        return Ok(());
    }
    match source {
        Source::Path => Err(ApiError::internal(
            "Only root can pass arbitrary filesystem paths.",
        )),
        Source::Volume {
            owner: Some(vmid), ..
        } => ctx.require(&format!("/vms/{vmid}"), &["VM.Clone"], false),
        Source::Volume { storage, .. } => {
            let path = format!("/storage/{storage}");
            if ctx.check(&path, &["Datastore.Allocate"], false) {
                return Ok(());
            }
            ctx.require(&path, &["Datastore.AllocateSpace", "Datastore.Audit"], true)
        }
    }
}

/// What `target` allocates in: LVM extents, whole MiB, or KiB.
fn allocation_unit(state: &SimState, target: &str) -> u64 {
    match state.config.storage(target).map(|s| s.r#type.as_str()) {
        Some("lvm" | "lvmthin") => 4 << 20,
        Some("rbd" | "zfspool") => 1 << 20,
        _ => 1 << 10,
    }
}

/// The size of the volume that importing `src` (as seen from `node`) onto `target` creates; the
/// task's error when there is nothing to import.
pub fn imported_size(state: &SimState, src: &str, node: &str, target: &str) -> Result<u64, String> {
    if src.starts_with('/') {
        // The simulator has no file system to read a path from.
        return Err(format!("could not get file size of {src}"));
    }
    let size = state
        .volume(src, node)
        .map(|v| v.size)
        .ok_or_else(|| format!("volume '{src}' does not exist"))?;
    Ok(size.div_ceil(allocation_unit(state, target)) * allocation_unit(state, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterConfig;
    use crate::state::Volume;

    fn state_with_image(size: u64) -> SimState {
        let mut s =
            SimState::new(ClusterConfig::default(), "pw", 1_700_000_000_000).expect("state");
        s.volumes.push(Volume {
            volid: "local:import/disk.qcow2".into(),
            storage: "local".into(),
            node: Some("pve".into()),
            size,
            vmid: None,
            content: "import".into(),
            format: "qcow2".into(),
        });
        s
    }

    #[test]
    fn the_new_volume_has_the_sources_size_in_the_targets_unit() {
        let s = state_with_image((1 << 20) + 1);
        assert_eq!(
            imported_size(&s, "local:import/disk.qcow2", "pve", "local-lvm"),
            Ok(4 << 20)
        );
        assert_eq!(
            imported_size(&s, "local:import/disk.qcow2", "pve", "local"),
            Ok((1 << 20) + 1024)
        );
        assert_eq!(
            imported_size(&s, "local:import/none.qcow2", "pve", "local-lvm"),
            Err("volume 'local:import/none.qcow2' does not exist".to_string())
        );
    }

    #[test]
    fn only_zero_sized_new_disks_import_and_isos_are_no_source() {
        let s = state_with_image(1);
        let check = |v: &str| {
            let d = Drive::parse("scsi0", v).expect("parses");
            check_request(&s, "scsi0", &d).map_err(|e| e.errors.get("scsi0").cloned())
        };
        assert!(check("local-lvm:0,import-from=local:import/disk.qcow2").is_ok());
        assert_eq!(
            check("local-lvm:4,import-from=local:import/disk.qcow2"),
            Err(Some(SYNTAX.to_string()))
        );
        assert_eq!(
            check("local-lvm:0,import-from=local:iso/a.iso"),
            Err(Some(
                "local:iso/a.iso has wrong type 'iso' - needs to be 'images' or 'import'"
                    .to_string()
            ))
        );
    }
}
