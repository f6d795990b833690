//! VMID allocation, serialised per Proxmox cluster (docs/design.md principle 3): `/cluster/nextid`
//! does not reserve, so the controller hands out one id at a time, never the same twice while its
//! VM is not yet visible, optionally within a configured range, and the reconciler asks again when
//! Proxmox answers that the id already exists.
//!
//! While ids handed out are still held (their creates are in flight), the next one is the lowest
//! id above them that the inventory does not show, without asking Proxmox: a burst of N creates
//! costs one `nextid` call instead of N (and the N² re-asks of ids that were just handed out). An
//! id taken by a VM the credentials cannot see makes the create fail with "already exists", and
//! the reconciler marks it taken and asks again, as for any race.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pve_client::{PveClient, PveError};
use pve_operator_api::VmidRange;
use tokio::sync::Mutex;

use super::Snapshot;

/// How long a handed-out id is held back from others: long enough for the create to show up in
/// the inventory.
const HOLD: Duration = Duration::from_secs(600);

/// Why no VMID could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum VmidError {
    /// Proxmox could not be asked.
    #[error(transparent)]
    Proxmox(#[from] PveError),
    /// Every id in the configured range is taken.
    #[error(
        "no free VMID left in the range {min}-{max} that the request's ProxmoxCluster and ProxmoxIdentity allow (spec.allowed.vmidRange); widen it, or free VMIDs in it"
    )]
    RangeExhausted {
        /// Lowest id of the range.
        min: u32,
        /// Highest id of the range.
        max: u32,
    },
}

/// The highest VMID Proxmox accepts.
const MAX_VMID: u32 = 999_999_999;

/// The lowest id above every held one that `taken` does not rule out, when ids are held.
fn above_held(held: &HashMap<u32, Instant>, taken: impl Fn(u32) -> bool) -> Option<u32> {
    let highest = *held.keys().max()?;
    (highest.checked_add(1)?..=MAX_VMID).find(|id| !taken(*id))
}

/// Hands out VMIDs of one cluster, one caller at a time.
#[derive(Default)]
pub struct VmidAllocator {
    held: Mutex<HashMap<u32, Instant>>,
}

impl VmidAllocator {
    /// A free VMID: not in `snapshot`, not handed out recently, inside `range` when given, and
    /// free according to Proxmox right now.
    pub async fn allocate(
        &self,
        pve: &PveClient,
        snapshot: &Snapshot,
        range: Option<VmidRange>,
    ) -> Result<u32, VmidError> {
        let mut held = self.held.lock().await;
        held.retain(|_, at| at.elapsed() < HOLD);
        let taken = |id: u32| snapshot.vms.contains_key(&id) || held.contains_key(&id);
        let mut candidate = match range {
            Some(range) => range.min,
            None => {
                if let Some(id) = above_held(&held, taken) {
                    held.insert(id, Instant::now());
                    return Ok(id);
                }
                // Proxmox just said this one is free: no need to ask again unless it is held.
                let next = pve.next_vmid().await?;
                if !taken(next) {
                    held.insert(next, Instant::now());
                    return Ok(next);
                }
                next
            }
        };
        loop {
            if let Some(range) = range
                && candidate > range.max
            {
                return Err(VmidError::RangeExhausted {
                    min: range.min,
                    max: range.max,
                });
            }
            if !taken(candidate) && pve.vmid_is_free(candidate).await? {
                held.insert(candidate, Instant::now());
                return Ok(candidate);
            }
            candidate += 1;
        }
    }

    /// Forgets that `vmid` was handed out (its VM now exists, or it was never used).
    pub async fn release(&self, vmid: u32) {
        self.held.lock().await.remove(&vmid);
    }

    /// Marks `vmid` as taken by someone else (Proxmox said it already exists).
    pub async fn mark_taken(&self, vmid: u32) {
        self.held.lock().await.insert(vmid, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_ids_held_the_next_is_above_them_and_skips_what_the_inventory_shows() {
        let now = Instant::now();
        let held: HashMap<u32, Instant> = [(100, now), (103, now)].into();
        let shown = [104, 105];
        let taken = |id: u32| shown.contains(&id) || held.contains_key(&id);
        assert_eq!(above_held(&held, taken), Some(106));
        // Nothing held: Proxmox is asked.
        assert_eq!(above_held(&HashMap::new(), |_| false), None);
        // No id left above the held ones.
        let full: HashMap<u32, Instant> = [(MAX_VMID, now)].into();
        assert_eq!(above_held(&full, |_| false), None);
    }
}
