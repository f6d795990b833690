//! When the controller first looked at each new request's current version. Before a new
//! request's VM is created, the controller must see Proxmox as it is after the request reached
//! this version (a VM with its uid tag would otherwise be made twice, for example after its
//! status was lost): any inventory read that began after the first look will do. A request that
//! waits for a task slot is looked at again and again at the same version, and each of those
//! passes would otherwise read every VM of the cluster anew.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a first look is remembered (a request that waits longer is read fresh again).
const KEEP: Duration = Duration::from_secs(300);

/// First looks by request uid: the resource version looked at, and when.
#[derive(Debug, Default)]
pub struct FirstLooks {
    by_uid: Mutex<HashMap<String, (String, Instant)>>,
}

impl FirstLooks {
    /// When the controller first looked at request `uid` at `version` (now, if this is the
    /// first look at that version).
    pub fn at(&self, uid: &str, version: &str) -> Instant {
        let mut by_uid = self.by_uid.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match by_uid.get(uid) {
            Some((seen, at)) if seen == version && at.elapsed() < KEEP => *at,
            _ => {
                by_uid.retain(|_, (_, at)| at.elapsed() < KEEP);
                by_uid.insert(uid.to_string(), (version.to_string(), now));
                now
            }
        }
    }

    /// Forgets request `uid` (its VM is being created, or it is gone).
    pub fn forget(&self, uid: &str) {
        self.by_uid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_look_at_a_version_is_kept_and_a_new_version_is_a_new_first_look() {
        let looks = FirstLooks::default();
        let first = looks.at("uid", "100");
        assert_eq!(looks.at("uid", "100"), first);
        let changed = looks.at("uid", "101");
        assert!(changed >= first);
        assert_eq!(looks.at("uid", "101"), changed);
        looks.forget("uid");
        assert!(looks.at("uid", "101") >= changed);
        assert!(looks.at("other", "100") >= first);
    }
}
