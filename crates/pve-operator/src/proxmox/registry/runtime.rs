//! The runtime of one Proxmox cluster as one set of credentials sees it ([`ClusterRuntime`]):
//! the API client and everything the controller keeps for those credentials ([`IdentityKey`]), started with the timers of
//! [`Intervals`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use pve_client::{PveClient, PveConfig, PveError};

use crate::proxmox::{Inventory, TaskTracker, Trigger, VmidAllocator};

/// Which credentials a connection uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKey {
    /// The controller's default connection (`--config`).
    Default,
    /// A ProxmoxIdentity, by name.
    Named(String),
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityKey::Default => write!(f, "the default Proxmox connection"),
            IdentityKey::Named(name) => write!(f, "ProxmoxIdentity {name:?}"),
        }
    }
}

/// Timers of the per-cluster machinery.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// How often the shared inventory is read.
    pub inventory: Duration,
    /// How often in-flight tasks are polled.
    pub tasks: Duration,
    /// At most this many of the controller's tasks run at once on one node (the ceiling of its
    /// adaptive window, `proxmox/task_slots.rs`).
    pub max_tasks_per_node: usize,
}

impl Intervals {
    /// What the controller uses unless told otherwise (the defaults of `--inventory-interval`,
    /// `--task-poll-interval` and `--max-tasks-per-node`).
    pub const DEFAULT: Intervals = Intervals {
        inventory: Duration::from_secs(10),
        tasks: Duration::from_millis(500),
        max_tasks_per_node: 32,
    };
}

impl Default for Intervals {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Everything the controller keeps for one set of credentials (one Proxmox cluster as they see
/// it): the client, the shared inventory, the task tracker, the VMID allocator, recent
/// placements, node facts, the release and the permission cache. Reconciles borrow it as
/// `conn`.
pub struct ClusterRuntime {
    /// Which credentials these are.
    pub key: IdentityKey,
    /// The API client (one connection pool, bounded concurrency).
    pub pve: PveClient,
    /// The endpoint, normalised (`https://host:8006/api2/json`).
    pub endpoint: String,
    /// The shared inventory.
    pub inventory: Inventory,
    /// The shared task tracker.
    pub tasks: TaskTracker,
    /// The VMID allocator.
    pub vmids: VmidAllocator,
    /// What passes that sent tasks knew about their VMs, for the passes after them.
    pub handoffs: crate::proxmox::Handoffs,
    /// When each new request's current version was first looked at.
    pub first_looks: crate::proxmox::first_look::FirstLooks,
    /// The credentials' effective privileges, read at most once a minute per path.
    pub permissions: crate::privileges::PermissionCache,
    /// The VMs placed recently, which the inventory may not show yet.
    pub placements: crate::placement::RecentPlacements,
    /// Short-lived reads of nodes' storages, bridges and ISOs, for checks before a create.
    pub node_facts: crate::proxmox::node_facts::NodeFacts,
    /// The Proxmox VE release, for the privilege rows that differ between releases.
    pub release: crate::proxmox::release::ReleaseCache,
    fingerprint: u64,
}

impl ClusterRuntime {
    /// A new connection with the credentials of `config`: its client, and its inventory and task
    /// tracker running (they trigger reconciles through `trigger`).
    pub(super) fn open(
        key: IdentityKey,
        config: &PveConfig,
        trigger: &Trigger,
        intervals: Intervals,
    ) -> Result<Self, PveError> {
        let pve = PveClient::new(config)?;
        Ok(ClusterRuntime {
            key,
            endpoint: config.url.clone(),
            inventory: Inventory::spawn(pve.clone(), trigger.clone(), intervals.inventory),
            tasks: TaskTracker::spawn(
                pve.clone(),
                (trigger.clone(), &config.url),
                intervals.tasks,
                intervals.max_tasks_per_node,
            ),
            node_facts: crate::proxmox::node_facts::NodeFacts::new(pve.clone()),
            pve,
            vmids: VmidAllocator::default(),
            handoffs: crate::proxmox::Handoffs::default(),
            first_looks: Default::default(),
            permissions: crate::privileges::PermissionCache::new(
                config,
                crate::privileges::PERMISSION_CACHE_TTL,
            ),
            // Two inventory reads: by then a placed VM has started and is read back.
            placements: crate::placement::RecentPlacements::new(intervals.inventory * 2),
            release: crate::proxmox::release::ReleaseCache::default(),
            fingerprint: fingerprint(config),
        })
    }

    /// Whether this connection was opened with exactly these settings (secrets included).
    pub(super) fn uses(&self, config: &PveConfig) -> bool {
        self.fingerprint == fingerprint(config)
    }
}

/// A hash of the settings, to notice changes without keeping or comparing secrets in clear.
fn fingerprint(config: &PveConfig) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{config:?}").hash(&mut hasher);
    // Debug redacts secrets, so a rotated secret is noticed by hashing it here (the hash stays
    // in memory and is never printed).
    match &config.credentials {
        pve_client::Credentials::Token(token) => token.secret.expose().hash(&mut hasher),
        pve_client::Credentials::Password { password, .. } => password.expose().hash(&mut hasher),
    }
    hasher.finish()
}
