//! The capacity model: what a real Proxmox VE cluster can do at once and how long it takes,
//! off unless the cluster YAML has a `capacity:` section ([`CapacityModel`]). When on, API calls
//! hold workers of their node's pveproxy or pvedaemon pool ([`workers`]), disk allocations take
//! their storage's lock and full clones share its bandwidth ([`locks`]), task durations follow
//! from the model ([`durations`]), and the counters ([`counters`]) show utilisation. [`floor`]
//! computes the shortest makespan a workload can have under a model. Sources and estimates:
//! `docs/pve-sim-capacity.md`.

pub mod counters;
pub mod durations;
pub mod floor;
pub mod locks;
pub mod model;
pub mod unprotected;
pub mod workers;

pub use counters::{CapacityStats, LockCounters, PoolCounters};
pub use floor::{FloorBounds, Source, StorageScope, Workload, bounds, floor};
pub use locks::StorageRuntime;
pub use model::{CallClass, CallCosts, CapacityModel, FlockTimeouts};
