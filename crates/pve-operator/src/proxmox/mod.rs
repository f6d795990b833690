//! Everything the controller keeps per Proxmox cluster: the API client, the shared inventory, the
//! task tracker and the VMID allocator, found through the [`ClusterRegistry`].

pub mod inventory;
pub mod node_facts;
pub mod registry;
pub mod release;
pub mod tasks;
pub mod vmid;

pub use inventory::{Inventory, Snapshot, VmEntry};
pub use registry::{Binding, ClusterRegistry, ClusterRuntime, IdentityKey, Purpose};
pub use tasks::{TaskOutcome, TaskTracker};
pub use vmid::VmidAllocator;

use kube::runtime::reflector::ObjectRef;
use pve_operator_api::MachineRequest;
use tokio::sync::mpsc;

/// Sends the MachineRequests that something outside Kubernetes (a finished task, a VM that
/// changed in Proxmox) wants reconciled.
pub type Trigger = mpsc::UnboundedSender<ObjectRef<MachineRequest>>;
