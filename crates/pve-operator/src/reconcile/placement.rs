//! Choosing the node for a new VM.

use pve_operator_api::{MachineRequestSpec, PlacementStrategy};

use crate::proxmox::inventory::{NodeEntry, Snapshot};

/// The node to create the VM on, or why there is none (a message naming the spec field).
pub fn choose_node(spec: &MachineRequestSpec, snapshot: &Snapshot) -> Result<String, String> {
    let online: Vec<&NodeEntry> = snapshot.nodes.values().filter(|n| n.online).collect();
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
            // Unknown free memory (no Sys.Audit on /nodes) ranks last; ties go by name.
            fitting
                .into_iter()
                .max_by(|a, b| free(a).cmp(&free(b)).then_with(|| b.name.cmp(&a.name)))
        }
        PlacementStrategy::FewestVMs => {
            let count =
                |n: &NodeEntry| snapshot.vms.values().filter(|vm| vm.node == n.name).count();
            candidates
                .into_iter()
                .min_by(|a, b| count(a).cmp(&count(b)).then_with(|| a.name.cmp(&b.name)))
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
            choose_node(&spec(serde_json::json!({}), 1024), &s),
            Ok("b".into())
        );
        let too_big = choose_node(&spec(serde_json::json!({}), 100 * 1024), &s);
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
            choose_node(&spec(serde_json::json!({"node": "a"}), 1024), &s),
            Ok("a".into())
        );
        let offline = choose_node(&spec(serde_json::json!({"node": "c"}), 1024), &s);
        assert!(
            offline
                .is_err_and(|e| e.contains("spec.placement.node c") && e.contains("online: a, b"))
        );
        assert_eq!(
            choose_node(
                &spec(serde_json::json!({"allowedNodes": ["a", "c"]}), 1024),
                &s
            ),
            Ok("a".into())
        );
    }
}
