//! Which Proxmox VE release a connection talks to: the privilege table has rows per release, so
//! the checks before each step must know it.

use std::sync::RwLock;

use pve_client::{PveClient, PveError, PveRelease};

/// The release of one connection's Proxmox, read from `GET /version` once and refreshed
/// whenever the ProxmoxCluster or identity reconcile reads the version again (an upgrade from 8.4
/// to 9.x is then noticed within one status interval).
#[derive(Debug, Default)]
pub struct ReleaseCache {
    known: RwLock<Option<PveRelease>>,
}

impl ReleaseCache {
    /// The release, asking Proxmox the first time.
    ///
    /// A `release` that does not parse (no real Proxmox answers so) counts as the newest release
    /// checked, whose privilege rows are the ones a current Proxmox applies.
    pub async fn get(&self, pve: &PveClient) -> Result<PveRelease, PveError> {
        if let Some(release) = self.cached() {
            return Ok(release);
        }
        let version = pve.version().await?;
        let release = version.pve_release().unwrap_or(PveRelease::NEWEST_CHECKED);
        self.note(release);
        Ok(release)
    }

    /// Records a release read elsewhere.
    pub fn note(&self, release: PveRelease) {
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = Some(release);
    }

    /// The release last read, if any.
    pub fn cached(&self) -> Option<PveRelease> {
        *self.known.read().unwrap_or_else(|p| p.into_inner())
    }
}
