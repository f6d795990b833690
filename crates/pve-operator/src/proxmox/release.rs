//! Which Proxmox VE release a connection talks to: the privilege table has rows per release, so
//! the checks before each step must know it.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use pve_client::{PveClient, PveError, PveRelease};

/// How long a release read from `GET /version` is trusted: an upgrade from 8.4 to 9.x is
/// noticed within this time even by a connection no ProxmoxCluster or identity reconcile reads
/// (one `/version` call per connection every 10 minutes).
pub const RELEASE_TTL: Duration = Duration::from_secs(600);

/// The release of one connection's Proxmox, read once and then every [`RELEASE_TTL`] (sooner
/// when the ProxmoxCluster or identity reconcile reads the version anyway).
#[derive(Debug, Default)]
pub struct ReleaseCache {
    known: RwLock<Option<(Instant, PveRelease)>>,
}

impl ReleaseCache {
    /// The release ([`pve_client::api::version::Version::privilege_release`]), asking Proxmox
    /// when it is not known or older than [`RELEASE_TTL`].
    pub async fn get(&self, pve: &PveClient) -> Result<PveRelease, PveError> {
        if let Some((read_at, release)) = *self.known.read().unwrap_or_else(|p| p.into_inner())
            && read_at.elapsed() < RELEASE_TTL
        {
            return Ok(release);
        }
        let version = pve.version().await?;
        let release = version.privilege_release();
        self.note(release);
        Ok(release)
    }

    /// Records a release read elsewhere, now.
    pub fn note(&self, release: PveRelease) {
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), release));
    }
}
