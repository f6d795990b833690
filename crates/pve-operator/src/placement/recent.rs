//! The controller's own recent placements, which the inventory cannot show yet: a VM placed a
//! moment ago uses no node memory until it runs and the next inventory read sees it. Placement
//! ranks nodes with them so that a burst of new requests spreads instead of piling onto the node
//! that looked emptiest in the last read.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Placements of the last `ttl`, by node.
pub struct RecentPlacements {
    ttl: Duration,
    entries: Mutex<Vec<(String, u64, Instant)>>,
}

/// What was placed on one node recently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    /// How many VMs.
    pub count: usize,
    /// Their memory, in bytes.
    pub memory_bytes: u64,
}

impl RecentPlacements {
    /// Remembers placements for `ttl` (long enough for a new VM to start and be read back).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// Notes a VM of `memory_bytes` placed on `node`.
    pub fn record(&self, node: &str, memory_bytes: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.push((node.to_string(), memory_bytes, Instant::now()));
    }

    /// The placements of the last `ttl`, by node (older ones are forgotten).
    pub fn by_node(&self) -> BTreeMap<String, Placed> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        entries.retain(|(_, _, at)| at.elapsed() < ttl);
        let mut out: BTreeMap<String, Placed> = BTreeMap::new();
        for (node, bytes, _) in entries.iter() {
            let placed = out.entry(node.clone()).or_default();
            placed.count += 1;
            placed.memory_bytes += bytes;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_add_up_per_node_and_expire() {
        let recent = RecentPlacements::new(Duration::from_secs(60));
        recent.record("a", 1 << 30);
        recent.record("a", 1 << 30);
        recent.record("b", 512 << 20);
        let by_node = recent.by_node();
        assert_eq!(
            by_node["a"],
            Placed {
                count: 2,
                memory_bytes: 2 << 30
            }
        );
        assert_eq!(by_node["b"].count, 1);

        let expired = RecentPlacements::new(Duration::ZERO);
        expired.record("a", 1);
        assert!(expired.by_node().is_empty());
    }
}
