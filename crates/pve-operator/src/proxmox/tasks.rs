//! One task tracker per Proxmox cluster: reconciles never wait on a Proxmox task. They record
//! the UPID and return; the tracker polls every in-flight task of the cluster on one timer and
//! triggers the owning request's reconcile when its task ends.
//!
//! It also bounds the load on each node: a task is started only with one of the node's slots
//! ([`TaskTracker::reserve`]), and the slot goes back when the tracker sees the task end. How
//! many slots a node has adapts to how its tasks end (`task_slots.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::task_slots::{self, NodeWindows, Signal};
use super::{Trigger, Wake};
use pve_client::{ExitStatus, PveClient, Upid};

pub use super::task_slots::NodeSlot;

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Its exit status (`OK`, `WARNINGS: N`, or Proxmox's error text).
    pub exit: ExitStatus,
    /// The last lines of its log when it failed, for the user.
    pub log_tail: Vec<String>,
}

impl TaskOutcome {
    /// Whether the task did what it was asked.
    pub fn succeeded(&self) -> bool {
        self.exit.is_success()
    }
}

/// How long the controller waits for a Proxmox task before it says that the task is overdue
/// (`--task-deadline`). It keeps waiting after that: a task is never abandoned or stopped.
///
/// Thirty minutes: Proxmox's own limits for the tasks the controller starts are far shorter
/// (a start times out after 30 s plus 5 s per NIC, ×4 with PCI passthrough, and one second per
/// GiB of RAM above 30 GiB; a shutdown after 120 s here, then 10 s more for the kill; create
/// allocates volumes in seconds), except a full clone, which copies every used block of the
/// template's disks at storage speed (tens of minutes for a large template on slow or busy
/// storage).
pub const DEFAULT_TASK_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Where a running task stands against its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAge {
    /// Within its deadline, which passes after this much more time.
    Within(Duration),
    /// Past its deadline: it has run this long.
    Overdue(Duration),
}

/// How `upid` stands against `deadline` at `now`. The start time is the one in the UPID (the
/// Proxmox node's clock when the task began, in seconds), so the deadline holds across
/// controller restarts; a start time in the future (clock skew) counts as "just started".
pub fn task_age(upid: &Upid, deadline: Duration, now: std::time::SystemTime) -> TaskAge {
    let started = std::time::UNIX_EPOCH + Duration::from_secs(u64::from(upid.starttime));
    let running = now.duration_since(started).unwrap_or_default();
    match deadline.checked_sub(running) {
        Some(left) if !left.is_zero() => TaskAge::Within(left),
        _ => TaskAge::Overdue(running),
    }
}

#[derive(Debug)]
struct Tracked {
    upid: Upid,
    owner: Wake,
    outcome: Option<TaskOutcome>,
    /// The node slot the task holds while it runs.
    slot: Option<NodeSlot>,
}

/// In-flight tasks of one cluster.
#[derive(Clone)]
pub struct TaskTracker {
    tasks: Arc<Mutex<HashMap<String, Tracked>>>,
    windows: NodeWindows,
}

/// The window a node starts with, in tasks at once (below `--max-tasks-per-node`, which caps it).
pub const INITIAL_TASKS_PER_NODE: usize = 8;

impl TaskTracker {
    /// Starts the tracker's polling loop; it ends when the returned tracker and all its clones
    /// are dropped.
    /// At most `per_node` tasks started by the controller run at once on one node (fewer while
    /// the node's window is smaller; `cluster`, the API URL, labels the window gauge).
    pub fn spawn(
        pve: PveClient,
        (trigger, cluster): (Trigger, &str),
        interval: Duration,
        per_node: usize,
    ) -> Self {
        let windows = NodeWindows::new(cluster, trigger.clone(), INITIAL_TASKS_PER_NODE, per_node);
        let tracker = TaskTracker {
            tasks: Arc::default(),
            windows,
        };
        let weak = Arc::downgrade(&tracker.tasks);
        let windows = tracker.windows.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if weak.strong_count() == 0 {
                    break;
                }
                poll_once(&pve, &weak, &trigger, &windows).await;
            }
        });
        tracker
    }

    /// A slot to start a task on `node`, or `None` when the node already runs as many of the
    /// controller's tasks as its window allows; then `owner` is woken when a slot frees.
    pub fn reserve(&self, node: &str, owner: &Wake) -> Option<NodeSlot> {
        self.windows.reserve(node, Some(owner))
    }

    /// How many more tasks the controller may start on `node` now.
    pub fn free_slots(&self, node: &str) -> usize {
        self.windows.free(node)
    }

    /// Whether every one of `nodes` runs as many tasks as its window allows; if so, `owner` is
    /// woken when a slot frees.
    pub fn all_busy_or_wait(&self, nodes: &[&str], owner: &Wake) -> bool {
        self.windows.all_full_or_wait(nodes, owner)
    }

    /// Tells `node`'s window that a call to it failed with `message` before any task began (a
    /// create refused because the VM's lock was not had in time, a worker timeout).
    pub fn call_failed(&self, node: &str, message: &str) {
        if task_slots::is_congestion(message) {
            self.windows.feedback(node, Signal::Congested);
        }
    }

    /// Starts tracking `upid` for `owner` (idempotent: a UPID read back from status after a
    /// restart is tracked again).
    pub fn track(&self, upid: &Upid, owner: Wake) {
        self.track_with(upid, owner, None);
    }

    /// Like [`TaskTracker::track`], keeping `slot` taken until the task ends.
    pub fn track_with(&self, upid: &Upid, owner: Wake, slot: Option<NodeSlot>) {
        let mut tasks = self.lock();
        tasks.entry(upid.to_string()).or_insert_with(|| Tracked {
            upid: upid.clone(),
            owner,
            outcome: None,
            slot,
        });
    }

    /// The outcome of a finished task, removing it from the tracker; `None` while it runs.
    pub fn take_outcome(&self, upid: &Upid) -> Option<TaskOutcome> {
        let mut tasks = self.lock();
        let key = upid.to_string();
        let finished = tasks.get(&key).is_some_and(|t| t.outcome.is_some());
        if finished {
            tasks.remove(&key).and_then(|t| t.outcome)
        } else {
            None
        }
    }

    /// A task this tracker follows for `owner`, running or ended and not yet taken: the one a
    /// pass sent when the status that recorded it was refused (the request had changed
    /// meanwhile), so that the next pass waits for it instead of sending it again.
    pub fn task_of(&self, owner: &Wake) -> Option<Upid> {
        self.tasks_of(owner).pop()
    }

    /// Every task this tracker follows for `owner` and that is not yet taken, oldest first.
    pub fn tasks_of(&self, owner: &Wake) -> Vec<Upid> {
        let tasks = self.lock();
        let mut theirs: Vec<Upid> = tasks
            .values()
            .filter(|t| &t.owner == owner)
            .map(|t| t.upid.clone())
            .collect();
        theirs.sort_by_key(|u| (u.starttime, u.pstart));
        theirs
    }

    /// Number of tasks still running.
    pub fn in_flight(&self) -> usize {
        self.lock().values().filter(|t| t.outcome.is_none()).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Polls every running task once: one task-list read per node that runs several of them,
/// a status read for a node's only task and for any the list does not show. The tracker is
/// held only between calls, never across one: once the controller drops it (a leader that
/// lost its Lease), not one more call is sent.
async fn poll_once(
    pve: &PveClient,
    tracked: &Weak<Mutex<HashMap<String, Tracked>>>,
    trigger: &Trigger,
    windows: &NodeWindows,
) {
    let mut by_node: BTreeMap<String, Vec<Upid>> = BTreeMap::new();
    {
        let Some(tasks) = tracked.upgrade() else {
            return;
        };
        let tasks = tasks.lock().unwrap_or_else(|p| p.into_inner());
        for task in tasks.values().filter(|t| t.outcome.is_none()) {
            by_node
                .entry(task.upid.node.clone())
                .or_default()
                .push(task.upid.clone());
        }
    }
    for (node, upids) in by_node {
        if tracked.strong_count() == 0 {
            return;
        }
        let listed = if upids.len() > 1 {
            pve.task_states(&node, &upids)
                .await
                .unwrap_or_else(|error| {
                    tracing::debug!(%node, %error, "task list not readable; polling each task");
                    HashMap::new()
                })
        } else {
            HashMap::new()
        };
        for upid in upids {
            if tracked.strong_count() == 0 {
                return;
            }
            let exit = match listed.get(&upid.to_string()) {
                Some(None) => continue,
                Some(Some(exit)) => ExitStatus::parse(exit),
                None => match status_of(pve, &upid).await {
                    Polled::Running => continue,
                    Polled::Gone => {
                        finish(
                            tracked,
                            &upid,
                            TaskOutcome {
                                exit: ExitStatus::parse("unknown task"),
                                log_tail: vec![],
                            },
                            (trigger, windows),
                        );
                        continue;
                    }
                    Polled::Finished(exit) => exit,
                },
            };
            let log_tail = if exit.is_success() || tracked.strong_count() == 0 {
                Vec::new()
            } else {
                pve.task_log_tail(&upid, 10).await.unwrap_or_default()
            };
            finish(
                tracked,
                &upid,
                TaskOutcome { exit, log_tail },
                (trigger, windows),
            );
        }
    }
}

/// What one status read says of a task.
enum Polled {
    /// Still running, or not readable yet.
    Running,
    /// Gone from the node's log (a very old UPID): nothing to wait for.
    Gone,
    /// Finished with this exit status.
    Finished(ExitStatus),
}

async fn status_of(pve: &PveClient, upid: &Upid) -> Polled {
    match pve.task_status(upid).await {
        Ok(status) if status.is_running() => Polled::Running,
        Ok(status) => Polled::Finished(ExitStatus::parse(
            status.exitstatus.as_deref().unwrap_or("unknown"),
        )),
        Err(error) if error.kind() == pve_client::ErrorKind::NotFound => {
            tracing::warn!(%upid, %error, "task no longer known to Proxmox");
            Polled::Gone
        }
        Err(error) => {
            tracing::debug!(%upid, %error, "task status not readable yet");
            Polled::Running
        }
    }
}

fn finish(
    tracked: &Weak<Mutex<HashMap<String, Tracked>>>,
    upid: &Upid,
    outcome: TaskOutcome,
    (trigger, windows): (&Trigger, &NodeWindows),
) {
    let Some(tasks) = tracked.upgrade() else {
        return;
    };
    let slot = {
        let mut tasks = tasks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tracked) = tasks.get_mut(&upid.to_string()) else {
            return;
        };
        let signal = load_signal(&outcome);
        tracked.outcome = Some(outcome);
        let _ = trigger.send(tracked.owner.clone());
        tracked.slot.take().map(|slot| (slot, signal))
    };
    // The window learns from the task before its slot goes back (which wakes a waiter).
    if let Some((slot, signal)) = slot {
        windows.feedback(&upid.node, signal);
        drop(slot);
    }
}

/// What a finished task says about its node's load.
fn load_signal(outcome: &TaskOutcome) -> Signal {
    if outcome.succeeded() {
        return Signal::Succeeded;
    }
    let said = std::iter::once(outcome.exit.to_string())
        .chain(outcome.log_tail.iter().cloned())
        .any(|line| task_slots::is_congestion(&line));
    if said {
        Signal::Congested
    } else {
        Signal::Other
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    fn upid_started_at(secs: u32) -> Upid {
        format!("UPID:pve:0012D68C:8206F38C:{secs:08X}:qmclone:9000:root@pam:")
            .parse()
            .expect("a UPID")
    }

    #[test]
    fn a_task_is_overdue_once_its_deadline_after_the_upid_start_time_has_passed() {
        let started = 1_700_000_000;
        let upid = upid_started_at(started);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(u64::from(started) + secs);
        let deadline = Duration::from_secs(600);
        assert_eq!(
            task_age(&upid, deadline, at(0)),
            TaskAge::Within(Duration::from_secs(600))
        );
        assert_eq!(
            task_age(&upid, deadline, at(599)),
            TaskAge::Within(Duration::from_secs(1))
        );
        assert_eq!(
            task_age(&upid, deadline, at(600)),
            TaskAge::Overdue(Duration::from_secs(600))
        );
        assert_eq!(
            task_age(&upid, deadline, at(3600)),
            TaskAge::Overdue(Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_start_time_ahead_of_the_controllers_clock_counts_as_just_started() {
        let upid = upid_started_at(1_700_000_000);
        let before = UNIX_EPOCH + Duration::from_secs(1_699_999_000);
        assert_eq!(
            task_age(&upid, Duration::from_secs(60), before),
            TaskAge::Within(Duration::from_secs(60))
        );
    }

    #[test]
    fn the_deadline_is_measured_from_the_upid_not_from_when_the_controller_saw_it() {
        // A controller that restarts reads the UPID back from status: the same age.
        let now = SystemTime::now();
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or_default();
        let old = upid_started_at(secs - 7200);
        assert!(matches!(
            task_age(&old, DEFAULT_TASK_DEADLINE, now),
            TaskAge::Overdue(age) if age >= Duration::from_secs(7200)
        ));
    }
}
