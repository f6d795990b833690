//! Everything the controller keeps per Proxmox cluster: the API client, the shared inventory, the
//! task tracker and the VMID allocator, found through the [`ClusterRegistry`].

pub mod first_look;
pub mod handoff;
pub mod inventory;
pub mod node_facts;
pub mod registry;
pub mod release;
pub mod task_slots;
pub mod tasks;
pub mod vmid;

pub use handoff::{Handoff, Handoffs};
pub use inventory::{Inventory, Snapshot, VmEntry};
pub use registry::{Binding, ClusterRegistry, ClusterRuntime, IdentityKey, Purpose};
pub use tasks::{TaskOutcome, TaskTracker};
pub use vmid::VmidAllocator;

use kube::runtime::reflector::ObjectRef;
use pve_operator_api::{MachineRequest, ProxmoxImage};
use tokio::sync::mpsc;

/// An object that something outside Kubernetes (a finished task, a VM that changed in Proxmox)
/// wants reconciled, and so the owner of a tracked task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wake {
    /// A MachineRequest.
    Request(ObjectRef<MachineRequest>),
    /// A ProxmoxImage (its download ended).
    Image(ObjectRef<ProxmoxImage>),
}

/// Sends the objects that something outside Kubernetes wants reconciled.
pub type Trigger = mpsc::UnboundedSender<Wake>;
