//! What a pass knows about a VM when it sends a task, left for the pass that follows the task's
//! success: the VM as the task leaves it and, when the pass read the VM's config and changed
//! nothing since, that config. The next pass starts from it instead of reading the VM's status,
//! config and pending changes again, which is most of what provisioning a machine used to cost
//! (docs/controller-benchmark.md).
//!
//! A hand-off counts only once its task is seen to succeed, only while an inventory read that
//! began after that does not show the VM otherwise (the inventory is then the fresher view), and
//! only while it is young ([`MAX_AGE`]). A task that failed, a pass that changes the VM otherwise, or anything older,
//! and the VM is read from Proxmox as before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pve_client::Upid;
use pve_client::api::vmconfig::VmConfigView;

use super::{Snapshot, VmEntry};

/// The longest a hand-off is trusted after it was left. Past it, someone may have changed the
/// VM in Proxmox, and the next pass reads it again. (The inventory's change detection and the
/// resync still look at every VM as before.)
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// What a pass that sent a task knew, for the passes after it.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The VM as the task leaves it when it succeeds (its power state, no lock).
    pub vm: VmEntry,
    /// The config a pass read and verified as the request's, when nothing changed it since and
    /// it has no pending changes (it was read while the VM was stopped, and the only task since
    /// is a start).
    pub config: Option<VmConfigView>,
}

impl Handoff {
    /// The VM a create or clone task makes: `vmid` on `node`, named `name`, stopped and unlocked.
    /// Its config is not known until it is read (Proxmox adds keys to what was sent).
    pub fn created(vmid: u32, node: &str, name: &str) -> Self {
        Handoff {
            vm: VmEntry {
                vmid,
                node: node.to_string(),
                name: name.to_string(),
                status: "stopped".into(),
                tags: Vec::new(),
                lock: None,
                template: false,
            },
            config: None,
        }
    }

    /// `vm` once its start succeeded, with `config` when it is still the VM's (see
    /// [`Handoff::config`]).
    pub fn started(vm: &VmEntry, config: Option<VmConfigView>) -> Self {
        Handoff {
            vm: VmEntry {
                status: "running".into(),
                lock: None,
                ..vm.clone()
            },
            config,
        }
    }

    /// Whether this hand-off describes the VM `vmid` on `node`.
    pub fn is_for(&self, vmid: Option<u32>, node: Option<&str>) -> bool {
        vmid == Some(self.vm.vmid) && node == Some(self.vm.node.as_str())
    }
}

#[derive(Debug)]
struct Entry {
    upid: String,
    handoff: Handoff,
    left_at: Instant,
    /// When the tracker's outcome said the task succeeded.
    confirmed_at: Option<Instant>,
}

/// The hand-offs of one Proxmox cluster, by request uid: at most one per request, for its
/// latest task.
#[derive(Debug, Default)]
pub struct Handoffs {
    by_request: Mutex<HashMap<String, Entry>>,
}

impl Handoffs {
    /// Leaves `handoff` for request `uid`, whose pass just sent task `upid`; it counts once the
    /// task is seen to succeed ([`Handoffs::confirm`]). Forgets hand-offs too old to be used
    /// (their tasks failed, or their requests went away).
    pub fn leave(&self, uid: &str, upid: &Upid, handoff: Handoff) {
        let mut entries = self.lock();
        entries.retain(|_, e| e.left_at.elapsed() < MAX_AGE);
        let entry = Entry {
            upid: upid.to_string(),
            handoff,
            left_at: Instant::now(),
            confirmed_at: None,
        };
        entries.insert(uid.to_string(), entry);
    }

    /// Request `uid`'s task `upid` succeeded: its hand-off now describes the VM.
    pub fn confirm(&self, uid: &str, upid: &str) {
        if let Some(entry) = self.lock().get_mut(uid)
            && entry.upid == upid
        {
            entry.confirmed_at = Some(Instant::now());
        }
    }

    /// Request `uid`'s hand-off, when its task succeeded and it is young enough to trust, and
    /// unless `inventory`, read after the task was seen to end, shows the VM otherwise (gone,
    /// moved, locked, or in another power state): then the inventory is the fresher view.
    pub fn current(&self, uid: &str, inventory: &Snapshot) -> Option<Handoff> {
        let entries = self.lock();
        let entry = entries.get(uid)?;
        let confirmed = entry.confirmed_at?;
        let handoff = &entry.handoff;
        let contradicted = inventory.read_at.is_some_and(|read| read >= confirmed)
            && !inventory.vms.get(&handoff.vm.vmid).is_some_and(|seen| {
                seen.node == handoff.vm.node
                    && seen.lock.is_none()
                    && seen.is_running() == handoff.vm.is_running()
            });
        (!contradicted && entry.left_at.elapsed() < MAX_AGE).then(|| handoff.clone())
    }

    /// Keeps `config` (read and verified by a pass that changed nothing, the VM stopped) with
    /// request `uid`'s hand-off, for the passes after it.
    pub fn remember_config(&self, uid: &str, config: &VmConfigView) {
        if let Some(entry) = self.lock().get_mut(uid) {
            entry.handoff.config = Some(config.clone());
        }
    }

    /// Request `uid` sent task `upid`: a hand-off left for another task no longer describes the
    /// VM.
    pub fn keep_only(&self, uid: &str, upid: &Upid) {
        let mut entries = self.lock();
        if entries.get(uid).is_some_and(|e| e.upid != upid.to_string()) {
            entries.remove(uid);
        }
    }

    /// Forgets request `uid`'s hand-off (its VM is changed by other means than its task).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// How many hand-offs are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_request.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upid(n: u32) -> Upid {
        format!("UPID:pve:{n:08X}:00000001:65C0FA88:qmstart:{n}:tok@pve!ci:")
            .parse()
            .expect("UPID")
    }

    /// An inventory read at `read_at` that shows `vms`.
    fn inventory(read_at: Option<Instant>, vms: &[VmEntry]) -> Snapshot {
        Snapshot {
            vms: vms.iter().map(|vm| (vm.vmid, vm.clone())).collect(),
            read_at,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_handoff_counts_once_its_task_succeeded_until_a_later_inventory_read_shows_otherwise() {
        let none = inventory(None, &[]);
        let handoffs = Handoffs::default();
        handoffs.leave("uid-a", &upid(100), Handoff::created(100, "pve", "web"));
        assert!(
            handoffs.current("uid-a", &none).is_none(),
            "task still runs"
        );
        handoffs.confirm("uid-a", &upid(101).to_string());
        assert!(handoffs.current("uid-a", &none).is_none(), "another task");
        let before = inventory(Some(Instant::now()), &[]);
        handoffs.confirm("uid-a", &upid(100).to_string());
        let current = handoffs.current("uid-a", &before).expect("confirmed");
        assert_eq!(current.vm.status, "stopped");
        assert!(current.is_for(Some(100), Some("pve")));
        assert!(!current.is_for(Some(100), Some("pve2")));
        assert!(!current.is_for(None, Some("pve")));
        assert!(handoffs.current("uid-b", &none).is_none());
        // A later read that shows the VM as the task left it changes nothing.
        let vm = current.vm.clone();
        let agreeing = inventory(Some(Instant::now()), std::slice::from_ref(&vm));
        assert!(handoffs.current("uid-a", &agreeing).is_some());
        // One that shows it elsewhere, running, locked or not at all is the fresher view.
        let later = |vm: VmEntry| inventory(Some(Instant::now()), &[vm]);
        let running = VmEntry {
            status: "running".into(),
            ..vm.clone()
        };
        let moved = VmEntry {
            node: "pve2".into(),
            ..vm.clone()
        };
        let locked = VmEntry {
            lock: Some("backup".into()),
            ..vm.clone()
        };
        for shown in [
            later(running),
            later(moved),
            later(locked),
            inventory(Some(Instant::now()), &[]),
        ] {
            assert!(
                handoffs.current("uid-a", &shown).is_none(),
                "{:?}",
                shown.vms
            );
        }
    }

    #[test]
    fn a_new_task_or_a_change_replaces_or_forgets_the_handoff() {
        let handoffs = Handoffs::default();
        handoffs.leave("uid", &upid(1), Handoff::created(1, "pve", "a"));
        handoffs.confirm("uid", &upid(1).to_string());
        let config = VmConfigView {
            digest: "d".into(),
            ..VmConfigView::default()
        };
        handoffs.remember_config("uid", &config);
        assert_eq!(
            handoffs
                .current("uid", &inventory(None, &[]))
                .and_then(|h| h.config),
            Some(config)
        );
        handoffs.keep_only("uid", &upid(1));
        assert_eq!(handoffs.len(), 1, "the same task keeps it");
        handoffs.keep_only("uid", &upid(2));
        assert!(handoffs.is_empty(), "another task drops it");
        handoffs.leave("uid", &upid(3), Handoff::created(3, "pve", "a"));
        handoffs.forget("uid");
        assert!(handoffs.is_empty());
    }

    #[test]
    fn a_started_vm_is_handed_off_running_and_unlocked_with_its_config() {
        let mut vm = Handoff::created(7, "pve", "db").vm;
        vm.lock = Some("create".into());
        let config = VmConfigView {
            digest: "abc".into(),
            ..VmConfigView::default()
        };
        let handoff = Handoff::started(&vm, Some(config.clone()));
        assert!(handoff.vm.is_running());
        assert_eq!(handoff.vm.lock, None);
        assert_eq!(handoff.config, Some(config));
    }

    #[test]
    fn an_old_handoff_is_not_trusted_and_is_forgotten() {
        let handoffs = Handoffs::default();
        handoffs.leave("old", &upid(5), Handoff::created(5, "pve", "old"));
        handoffs.confirm("old", &upid(5).to_string());
        handoffs.lock().get_mut("old").expect("left").left_at =
            Instant::now() - MAX_AGE - Duration::from_secs(1);
        assert!(handoffs.current("old", &inventory(None, &[])).is_none());
        handoffs.leave("new", &upid(7), Handoff::created(7, "pve", "new"));
        assert_eq!(handoffs.len(), 1);
    }
}
