//! Request and task counters served at `/_sim/stats`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters since start (or the last reset).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// All `/api2` requests.
    pub requests_total: u64,
    /// Requests per `METHOD /path/template` (unknown paths count under their raw path).
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// Requests per caller (`user@realm`, `user@realm!token`, or `-` when unauthenticated).
    pub requests_by_caller: BTreeMap<String, u64>,
    /// Responses per HTTP status.
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Tasks started.
    pub tasks_started: u64,
    /// Tasks started per type.
    pub tasks_by_type: BTreeMap<String, u64>,
    /// Faults injected.
    pub faults_injected: u64,
    /// The most tasks that ran at once on each node (a high-water mark, for tests of clients
    /// that promise to bound their load).
    pub max_tasks_in_flight_by_node: BTreeMap<String, u64>,
    /// The capacity model's counters (only when the model is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::CapacityStats>,
}

impl Stats {
    /// Counts one request.
    pub fn count_request(&mut self, endpoint: &str, caller: &str) {
        self.requests_total += 1;
        *self
            .requests_by_endpoint
            .entry(endpoint.to_string())
            .or_default() += 1;
        *self
            .requests_by_caller
            .entry(caller.to_string())
            .or_default() += 1;
    }

    /// Counts one response.
    pub fn count_status(&mut self, status: u16) {
        *self.responses_by_status.entry(status).or_default() += 1;
    }

    /// Takes back one response counted with `status` (the client got another one).
    pub fn uncount_status(&mut self, status: u16) {
        if let Some(n) = self.responses_by_status.get_mut(&status) {
            *n = n.saturating_sub(1);
        }
    }

    /// Records that `running` tasks run on `node` right now.
    pub fn note_tasks_in_flight(&mut self, node: &str, running: u64) {
        let max = self
            .max_tasks_in_flight_by_node
            .entry(node.to_string())
            .or_default();
        *max = (*max).max(running);
    }

    /// The capacity counters, made on first use.
    pub fn capacity_mut(&mut self) -> &mut crate::capacity::CapacityStats {
        self.capacity.get_or_insert_with(Default::default)
    }

    /// Counts one started task.
    pub fn count_task(&mut self, kind: &str) {
        self.tasks_started += 1;
        *self.tasks_by_type.entry(kind.to_string()).or_default() += 1;
    }
}
