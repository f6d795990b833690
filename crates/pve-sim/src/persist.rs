//! `--state` persistence: the state is written atomically (temporary file, fsync, rename)
//! shortly after every change, and read back at start.

use std::path::{Path, PathBuf};

use crate::error::SimError;
use crate::state::SimState;

/// Reads a state file; `Ok(None)` if it does not exist. Like PVE reading its `user.cfg`, custom
/// roles lose (with a warning) the privileges the state's Proxmox VE version does not have.
pub fn load(path: &Path) -> Result<Option<SimState>, SimError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut state: SimState = serde_json::from_slice(&bytes)
                .map_err(|e| SimError::State(format!("{}: {e}", path.display())))?;
            state.access.set_version(state.config.pve_version);
            let now = crate::clock::now_ms(state.clock_offset_ms);
            crate::storage_files::abandon_running_downloads(&mut state, now);
            Ok(Some(state))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SimError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let io = |what: &str, e| SimError::io(format!("{what} {}", tmp.display()), e);
    // The state holds the TLS key and the ticket signing keys: readable by the owner only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| io("creating", e))?;
    f.write_all(bytes).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    drop(f);
    std::fs::rename(&tmp, path)
        .map_err(|e| SimError::io(format!("renaming to {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"{\"a\":1}").expect("first write");
        write_atomic(&path, b"{\"a\":2}").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":2}");
        let entries = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(entries, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the state file holds keys");
        }
    }

    #[test]
    fn a_restored_9_1_state_drops_the_privileges_9_1_lacks_from_custom_roles() {
        let config = crate::ClusterConfig {
            pve_version: crate::PveVersion::Pve8_4,
            user_cfg: Some("role:Watcher:VM.Audit,VM.Monitor:\n".to_string()),
            ..Default::default()
        };
        let state = SimState::new(config, "pw", 0).expect("state");
        let mut json = serde_json::to_value(&state).expect("serialises");
        // The same state, now claiming to be a 9.1 cluster (an upgraded or hand-edited file).
        json["config"]["pve_version"] = serde_json::json!("9.1");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, json.to_string().as_bytes()).expect("write");
        let loaded = load(&path).expect("loads").expect("exists");
        assert_eq!(loaded.access.version(), crate::PveVersion::Pve9_1);
        let watcher: Vec<String> = loaded
            .access
            .role("Watcher")
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert_eq!(watcher, ["VM.Audit"]);

        // An 8.4 state keeps the role as it was.
        write_atomic(&path, &serde_json::to_vec(&state).expect("serialises")).expect("write");
        let loaded = load(&path).expect("loads").expect("exists");
        assert_eq!(
            loaded.access.role("Watcher").map(|p| p.len()),
            Some(2),
            "8.4 keeps VM.Monitor"
        );
    }
}
