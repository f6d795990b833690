//! Choosing the node for a new VM.

use std::collections::{BTreeMap, BTreeSet};

use pve_operator_api::{MachineRequestSpec, PlacementStrategy};

use super::recent::Placed;
use crate::proxmox::inventory::{NodeEntry, Snapshot};

/// The controller's own load on a node, which the inventory does not show yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeLoad {
    /// Whether the controller may start another task there now (`--max-tasks-per-node`).
    pub has_free_task_slot: bool,
    /// What the controller placed there since the inventory could have seen it.
    pub recently_placed: Placed,
}

/// The node to create the VM on, or why there is none (a message naming the spec field).
///
/// Among the nodes the spec allows (and, for `MostFreeMemory`, that have room by the last
/// inventory), a node where the controller may start a task now comes first; then the
/// strategy decides, counting the controller's recent placements as if the inventory showed
/// them, so that a burst of requests spreads over the nodes. A node missing from `load` counts
/// as idle.
/// `allowed` (from the request's identity and cluster) limits the candidates further.
pub fn choose_node(
    spec: &MachineRequestSpec,
    snapshot: &Snapshot,
    load: &BTreeMap<String, NodeLoad>,
    allowed: Option<&BTreeSet<String>>,
) -> Result<String, String> {
    let load_of = |n: &NodeEntry| {
        load.get(&n.name).copied().unwrap_or(NodeLoad {
            has_free_task_slot: true,
            recently_placed: Placed::default(),
        })
    };
    let online: Vec<&NodeEntry> = snapshot
        .nodes
        .values()
        .filter(|n| n.online && allowed.is_none_or(|a| a.contains(&n.name)))
        .collect();
    let online_names = || {
        let names: Vec<&str> = online.iter().map(|n| n.name.as_str()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let placement = spec.placement.clone().unwrap_or_default();
    if let Some(node) = &placement.node {
        return if online.iter().any(|n| &n.name == node) {
            Ok(node.clone())
        } else {
            Err(format!(
                "spec.placement.node {node} is not an online Proxmox node (online: {})",
                online_names()
            ))
        };
    }
    let candidates: Vec<&NodeEntry> = match &placement.allowed_nodes {
        Some(allowed) => online
            .iter()
            .copied()
            .filter(|n| allowed.contains(&n.name))
            .collect(),
        None => online.clone(),
    };
    if candidates.is_empty() {
        return Err(match &placement.allowed_nodes {
            Some(allowed) => format!(
                "none of spec.placement.allowedNodes ({}) is an online Proxmox node (online: {})",
                allowed.join(", "),
                online_names()
            ),
            None if allowed.is_some() => {
                "no Proxmox node that the request's identity and cluster allow (spec.allowed.nodes) is online".to_string()
            }
            None => "no Proxmox node is online".to_string(),
        });
    }
    let needed = spec.memory.size_mib.saturating_mul(1 << 20);
    let chosen = match placement.strategy {
        PlacementStrategy::MostFreeMemory => {
            let free = |n: &NodeEntry| match (n.max_memory, n.used_memory) {
                (Some(max), Some(used)) => Some(max.saturating_sub(used)),
                _ => None,
            };
            let fitting: Vec<&NodeEntry> = candidates
                .iter()
                .copied()
                .filter(|n| free(n).is_none_or(|f| f >= needed))
                .collect();
            if fitting.is_empty() {
                return Err(format!(
                    "no candidate node has {} MiB of free memory for spec.memory.sizeMiB",
                    spec.memory.size_mib
                ));
            }
            // Free memory after the recent placements; unknown (no Sys.Audit on /nodes) ranks
            // last; ties go by name.
            let rank = |n: &NodeEntry| {
                let load = load_of(n);
                (
                    load.has_free_task_slot,
                    free(n).map(|f| f.saturating_sub(load.recently_placed.memory_bytes)),
                )
            };
            fitting
                .into_iter()
                .max_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| b.name.cmp(&a.name)))
        }
        PlacementStrategy::FewestVMs => {
            let rank = |n: &NodeEntry| {
                let load = load_of(n);
                let vms = snapshot.vms.values().filter(|vm| vm.node == n.name).count();
                (!load.has_free_task_slot, vms + load.recently_placed.count)
            };
            candidates
                .into_iter()
                .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)))
        }
    };
    chosen
        .map(|n| n.name.clone())
        .ok_or_else(|| "no Proxmox node is online".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, online: bool, max: u64, used: u64) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            online,
            max_memory: Some(max << 30),
            used_memory: Some(used << 30),
            max_cpu: Some(16),
        }
    }

    fn spec(placement: serde_json::Value, memory_mib: u64) -> MachineRequestSpec {
        serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": memory_mib },
            "boot": { "network": {} },
            "placement": placement,
        }))
        .expect("spec")
    }

    fn idle() -> BTreeMap<String, NodeLoad> {
        BTreeMap::new()
    }

    fn snapshot(nodes: Vec<NodeEntry>) -> Snapshot {
        Snapshot {
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn most_free_memory_picks_the_emptiest_online_node_that_fits() {
        let s = snapshot(vec![
            node("a", true, 64, 60),
            node("b", true, 64, 10),
            node("c", false, 512, 0),
        ]);
        assert_eq!(
            choose_node(&spec(serde_json::json!({}), 1024), &s, &idle(), None),
            Ok("b".into())
        );
        let too_big = choose_node(&spec(serde_json::json!({}), 100 * 1024), &s, &idle(), None);
        assert!(too_big.is_err_and(|e| e.contains("spec.memory.sizeMiB")));
    }

    #[test]
    fn fixed_and_allowed_nodes_are_honoured_and_offline_ones_named() {
        let s = snapshot(vec![
            node("a", true, 64, 60),
            node("b", true, 64, 10),
            node("c", false, 512, 0),
        ]);
        assert_eq!(
            choose_node(
                &spec(serde_json::json!({"node": "a"}), 1024),
                &s,
                &idle(),
                None
            ),
            Ok("a".into())
        );
        let offline = choose_node(
            &spec(serde_json::json!({"node": "c"}), 1024),
            &s,
            &idle(),
            None,
        );
        assert!(
            offline
                .is_err_and(|e| e.contains("spec.placement.node c") && e.contains("online: a, b"))
        );
        assert_eq!(
            choose_node(
                &spec(serde_json::json!({"allowedNodes": ["a", "c"]}), 1024),
                &s,
                &idle(),
                None
            ),
            Ok("a".into())
        );
    }

    #[test]
    fn a_burst_spreads_over_the_nodes_and_skips_nodes_without_a_task_slot() {
        let s = snapshot(vec![
            node("a", true, 64, 10),
            node("b", true, 64, 11),
            node("c", true, 64, 12),
        ]);
        let request = spec(serde_json::json!({}), 4096);
        // By the last inventory alone, every request of a burst would go to a.
        assert_eq!(choose_node(&request, &s, &idle(), None), Ok("a".into()));
        // After two 4 GiB placements on a, b has the most room left.
        let mut load = idle();
        load.insert(
            "a".into(),
            NodeLoad {
                has_free_task_slot: true,
                recently_placed: Placed {
                    count: 2,
                    memory_bytes: 8 << 30,
                },
            },
        );
        assert_eq!(choose_node(&request, &s, &load, None), Ok("b".into()));
        // A node where no task may start now comes last, whatever its memory.
        let busy = NodeLoad {
            has_free_task_slot: false,
            recently_placed: Placed::default(),
        };
        load.insert("b".into(), busy);
        assert_eq!(choose_node(&request, &s, &load, None), Ok("c".into()));
        // FewestVMs counts the recent placements too.
        let fewest = spec(serde_json::json!({"strategy": "FewestVMs"}), 1024);
        let mut load = idle();
        load.insert(
            "a".into(),
            NodeLoad {
                has_free_task_slot: true,
                recently_placed: Placed {
                    count: 1,
                    memory_bytes: 1 << 30,
                },
            },
        );
        assert_eq!(choose_node(&fewest, &s, &load, None), Ok("b".into()));
    }
}
