//! Placement: which node a new VM goes to ([`choose`]), only where its passthrough devices are
//! ([`devices`]), counting the controller's own recent
//! placements that the inventory cannot show yet ([`recent`]).

pub mod choose;
pub mod devices;
pub mod recent;

pub use choose::{NodeLoad, choose_node};
pub use recent::{Placed, RecentPlacements};
