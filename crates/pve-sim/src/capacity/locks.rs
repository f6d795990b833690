//! Storages under the capacity model: the allocation lock (one allocation at a time per
//! storage, node-local for non-shared storages, cluster-wide for shared ones; pve-storage
//! `Plugin.pm::cluster_lock_storage`) and the copy bandwidth that concurrent full clones share
//! equally (the copy runs outside the lock). Times are the simulator clock's ms; everything here
//! is computed when a task starts, so it is deterministic for a given sequence of starts.

use std::collections::BTreeMap;

use super::counters::LockCounters;

/// The error of an allocation that gave up waiting for a node-local storage's lock.
pub fn storage_lock_timeout_message(storage: &str) -> String {
    format!("can't lock file '/var/lock/pve-manager/pve-storage-{storage}' - got timeout")
}

/// The error of an allocation that gave up waiting for a shared storage's cluster lock.
pub fn shared_storage_lock_timeout_message(storage: &str) -> String {
    format!("cfs-lock 'storage-{storage}' error: got lock request timeout")
}

/// The key of a storage's lock and bandwidth: `storage@node` when node-local, `storage` when
/// shared.
pub fn storage_key(storage: &str, node: &str, shared: bool) -> String {
    if shared {
        storage.to_string()
    } else {
        format!("{storage}@{node}")
    }
}

/// One copy sharing a storage's bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyJob {
    /// The task copying.
    pub upid: String,
    /// When the copy starts (after its allocation), ms.
    pub start_ms: f64,
    /// Bytes still to copy at the storage's reference time.
    pub remaining: f64,
    /// What the task does after its copy, ms.
    pub tail_ms: u64,
}

/// The copies of one storage, as of `at_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Copies {
    at_ms: f64,
    jobs: Vec<CopyJob>,
}

/// When each of `jobs` ends, and what is left of each at `until` (jobs are changed in place),
/// sharing `bytes_per_ms` equally between the jobs that have started, from `from` on.
pub fn share_bandwidth(
    jobs: &mut [CopyJob],
    from: f64,
    until: f64,
    bytes_per_ms: f64,
) -> Vec<Option<f64>> {
    const DONE: f64 = 1e-6;
    let mut ends = vec![None; jobs.len()];
    let mut t = from;
    while t < until {
        let active: Vec<usize> = (0..jobs.len())
            .filter(|i| jobs[*i].start_ms <= t && jobs[*i].remaining > DONE)
            .collect();
        let next_start = jobs
            .iter()
            .filter(|j| j.start_ms > t && j.remaining > DONE)
            .map(|j| j.start_ms)
            .fold(f64::INFINITY, f64::min);
        if active.is_empty() {
            if next_start.is_infinite() {
                break;
            }
            t = next_start.min(until);
            continue;
        }
        let rate = bytes_per_ms / active.len() as f64;
        let first_done = active
            .iter()
            .map(|i| jobs[*i].remaining)
            .fold(f64::INFINITY, f64::min)
            / rate;
        let next = (t + first_done).min(next_start).min(until);
        for i in active {
            jobs[i].remaining -= (next - t) * rate;
            if jobs[i].remaining <= DONE {
                jobs[i].remaining = 0.0;
                ends[i] = Some(next);
            }
        }
        t = next;
    }
    ends
}

/// What the capacity model keeps about storages between task starts (not persisted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageRuntime {
    lock_free_at: BTreeMap<String, u64>,
    copies: BTreeMap<String, Copies>,
    /// The most copies that ran at once per storage key.
    pub max_concurrent_copies: BTreeMap<String, u64>,
    /// Waits for and timeouts of the allocation locks.
    pub lock_counters: LockCounters,
}

/// The outcome of asking for a storage's allocation lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// The allocations are done at this time; `waited_ms` for the lock first.
    Done {
        /// When the last allocation ends (ms).
        at_ms: u64,
        /// How long the lock was waited for.
        waited_ms: u64,
    },
    /// The lock was not free within the timeout: the task fails at this time.
    TimedOut {
        /// When the wait gives up (ms).
        at_ms: u64,
    },
}

impl StorageRuntime {
    /// Records a wait of `wait_ms` for an allocation lock, which timed out or not.
    pub fn note_lock_wait(&mut self, wait_ms: u64, timed_out: bool) {
        self.lock_counters.waits += 1;
        self.lock_counters.wait_ms += wait_ms;
        self.lock_counters.timeouts += u64::from(timed_out);
    }

    /// Forgets the counters (the locks and copies stay).
    pub fn reset_counters(&mut self) {
        self.max_concurrent_copies.clear();
        self.lock_counters = LockCounters::default();
    }

    /// Takes the lock of storage `key` at `now_ms` (FIFO after earlier takers) for `hold_ms`,
    /// waiting at most `timeout_ms`.
    pub fn allocate(
        &mut self,
        key: &str,
        now_ms: u64,
        hold_ms: u64,
        timeout_ms: u64,
    ) -> Allocation {
        let free_at = self.lock_free_at.get(key).copied().unwrap_or(0);
        let begin = free_at.max(now_ms);
        let waited_ms = begin - now_ms;
        if waited_ms > timeout_ms {
            return Allocation::TimedOut {
                at_ms: now_ms + timeout_ms,
            };
        }
        let at_ms = begin + hold_ms;
        self.lock_free_at.insert(key.to_string(), at_ms);
        Allocation::Done { at_ms, waited_ms }
    }

    /// Adds a copy of `bytes` by task `upid` to storage `key`, starting at `start_ms` and
    /// followed by `tail_ms` of other work; returns the end (ms) of every task copying to that
    /// storage, which the new copy may have pushed back.
    #[allow(clippy::too_many_arguments)]
    pub fn add_copy(
        &mut self,
        key: &str,
        upid: &str,
        now_ms: u64,
        start_ms: u64,
        bytes: u64,
        tail_ms: u64,
        bytes_per_ms: f64,
    ) -> Vec<(String, u64)> {
        let copies = self.copies.entry(key.to_string()).or_default();
        let now = (now_ms as f64).max(copies.at_ms);
        share_bandwidth(&mut copies.jobs, copies.at_ms, now, bytes_per_ms);
        copies.jobs.retain(|j| j.remaining > 0.0);
        copies.at_ms = now;
        copies.jobs.push(CopyJob {
            upid: upid.to_string(),
            start_ms: start_ms as f64,
            remaining: bytes as f64,
            tail_ms,
        });
        let peak = copies.jobs.len() as u64;
        let max = self
            .max_concurrent_copies
            .entry(key.to_string())
            .or_default();
        *max = (*max).max(peak);
        let mut projected = copies.jobs.clone();
        let ends = share_bandwidth(&mut projected, now, f64::INFINITY, bytes_per_ms);
        projected
            .iter()
            .zip(ends)
            .map(|(j, end)| {
                let end = end.unwrap_or(j.start_ms).ceil() as u64;
                (j.upid.clone(), end + j.tail_ms)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(upid: &str, start_ms: f64, remaining: f64) -> CopyJob {
        CopyJob {
            upid: upid.into(),
            start_ms,
            remaining,
            tail_ms: 0,
        }
    }

    #[test]
    fn two_copies_at_once_each_take_twice_as_long_as_one() {
        let mut one = vec![job("a", 0.0, 1000.0)];
        assert_eq!(
            share_bandwidth(&mut one, 0.0, f64::INFINITY, 10.0),
            vec![Some(100.0)]
        );
        let mut two = vec![job("a", 0.0, 1000.0), job("b", 0.0, 1000.0)];
        let ends = share_bandwidth(&mut two, 0.0, f64::INFINITY, 10.0);
        assert_eq!(ends, vec![Some(200.0), Some(200.0)]);
    }

    #[test]
    fn a_later_copy_slows_the_first_down_from_when_it_starts() {
        // `a` alone for 50 ms (500 bytes), then both at 5/ms: `a` ends at 150, `b` has 500
        // left and ends alone at 200.
        let mut jobs = vec![job("a", 0.0, 1000.0), job("b", 50.0, 1000.0)];
        let ends = share_bandwidth(&mut jobs, 0.0, f64::INFINITY, 10.0);
        assert_eq!(ends, vec![Some(150.0), Some(200.0)]);
    }

    #[test]
    fn adding_a_copy_moves_the_running_ones_back() {
        let mut rt = StorageRuntime::default();
        assert_eq!(
            rt.add_copy("s@n", "a", 0, 0, 1000, 0, 10.0),
            vec![("a".into(), 100)]
        );
        // `b` does 7 ms of other work after its copy.
        let ends = rt.add_copy("s@n", "b", 50, 50, 1000, 7, 10.0);
        assert_eq!(ends, vec![("a".into(), 150), ("b".into(), 207)]);
        assert_eq!(rt.max_concurrent_copies["s@n"], 2);
    }

    #[test]
    fn allocations_on_one_storage_take_turns_and_give_up_after_the_timeout() {
        let mut rt = StorageRuntime::default();
        let first = rt.allocate("s@n", 0, 200, 10_000);
        assert_eq!(
            first,
            Allocation::Done {
                at_ms: 200,
                waited_ms: 0
            }
        );
        let second = rt.allocate("s@n", 10, 200, 10_000);
        assert_eq!(
            second,
            Allocation::Done {
                at_ms: 400,
                waited_ms: 190
            }
        );
        // Another node's local storage has its own lock.
        let other = rt.allocate("s@m", 10, 200, 10_000);
        assert_eq!(
            other,
            Allocation::Done {
                at_ms: 210,
                waited_ms: 0
            }
        );
        let late = rt.allocate("s@n", 20, 200, 100);
        assert_eq!(late, Allocation::TimedOut { at_ms: 120 });
    }
}
