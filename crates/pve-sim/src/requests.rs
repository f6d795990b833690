//! The requests the simulator received, in the order they arrived, with who sent them and when
//! (the simulator's clock): what pveproxy writes to `/var/log/pveproxy/access.log`. Served at
//! `GET /_sim/requests`, so that a test can order the calls of several clients (two controller
//! instances, say) against each other.

use std::collections::VecDeque;

use serde::Serialize;

/// The most records kept; older ones are dropped (their sequence numbers are not reused).
const MAX_RECORDS: usize = 50_000;

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Arrival order, from 0 since start (or the last reset of the stats).
    pub seq: u64,
    /// Arrival time, ms since the epoch on the simulator's clock.
    pub at_ms: u64,
    /// `user@realm`, `user@realm!token`, or `-` when unauthenticated.
    pub caller: String,
    /// `METHOD /path/template` (an unknown path under its raw path).
    pub endpoint: String,
}

/// The log of received requests.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    next_seq: u64,
    records: VecDeque<RequestRecord>,
}

impl RequestLog {
    /// Records one request arriving at `at_ms`.
    pub fn record(&mut self, at_ms: u64, caller: &str, endpoint: &str) {
        if self.records.len() == MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(RequestRecord {
            seq: self.next_seq,
            at_ms,
            caller: caller.to_string(),
            endpoint: endpoint.to_string(),
        });
        self.next_seq += 1;
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_arrival_order_and_the_oldest_go_first_when_full() {
        let mut log = RequestLog::default();
        for i in 0..(MAX_RECORDS as u64 + 2) {
            log.record(
                1000 + i,
                if i % 2 == 0 { "a@pve" } else { "b@pve" },
                "GET /version",
            );
        }
        let records = log.records();
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records[0].seq, 2, "the two oldest were dropped");
        assert_eq!(records[0].caller, "a@pve");
        assert!(records.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    }
}
