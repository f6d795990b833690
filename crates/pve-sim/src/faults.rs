//! Seeded fault injection configured through `/_sim/faults`: error responses, proxy errors
//! (595/596), lock timeouts, task failures, extra latency (before the request is carried out or
//! after it, before the answer) and dropped connections, per endpoint and with a rate. The same seed and request sequence give the same faults.

use serde::{Deserialize, Serialize};

/// The fault configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the generator that decides whether a rule fires.
    #[serde(default)]
    pub seed: u64,
    /// Rules, checked in order; several may fire for one request.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Path template to match, as in the schema (`/nodes/{node}/qemu`); any when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Probability that the rule fires for a matching request, 0..=1.
    #[serde(default = "one")]
    pub rate: f64,
    /// Fire at most this many times.
    #[serde(default)]
    pub max_count: Option<u64>,
    /// What happens.
    pub fault: FaultKind,
}

fn one() -> f64 {
    1.0
}

/// A fault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// An error response from the handler (`{"data":null}` body, reason = message).
    Error {
        /// HTTP status (e.g. 500, 503).
        status: u16,
        /// Message.
        message: String,
    },
    /// A pveproxy pseudo-status with an empty body (`595 Connection refused`, `596 Connection timed out`).
    Proxy {
        /// 595..=599.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// `500 can't lock file '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout`.
    LockTimeout,
    /// The request succeeds but its task fails with this message.
    TaskFailure {
        /// Exit status text.
        message: String,
    },
    /// Extra latency before the request is carried out.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// The request is carried out at once, and its answer held back this long: a slow way
    /// back, during which the client may give up or die with the work already done (a task
    /// started, a VM created) and no UPID in its hands.
    LatencyAfter {
        /// Milliseconds.
        ms: u64,
    },
    /// The connection is dropped without an answer.
    Drop,
}

/// The fault engine.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    config: FaultConfig,
    rng: u64,
    fired: Vec<u64>,
}

impl Faults {
    /// Replaces the configuration and reseeds.
    pub fn configure(&mut self, config: FaultConfig) {
        self.rng = config.seed;
        self.fired = vec![0; config.rules.len()];
        self.config = config;
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// How often each rule fired.
    pub fn fired(&self) -> &[u64] {
        &self.fired
    }

    fn roll(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The faults that fire for a request to `method template`.
    pub fn decide(&mut self, method: &str, template: &str) -> Vec<FaultKind> {
        let mut out = Vec::new();
        for i in 0..self.config.rules.len() {
            let rule = &self.config.rules[i];
            let matches = rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && rule.path.as_deref().is_none_or(|p| p == template);
            if !matches || rule.max_count.is_some_and(|m| self.fired[i] >= m) {
                continue;
            }
            let rate = rule.rate;
            let fault = rule.fault.clone();
            if self.roll() < rate {
                self.fired[i] += 1;
                out.push(fault);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> FaultConfig {
        FaultConfig {
            seed,
            rules: vec![FaultRule {
                method: Some("POST".into()),
                path: Some("/nodes/{node}/qemu".into()),
                rate: 0.5,
                max_count: None,
                fault: FaultKind::LockTimeout,
            }],
        }
    }

    #[test]
    fn same_seed_gives_same_faults_and_rate_is_respected() {
        let run = |seed| {
            let mut f = Faults::default();
            f.configure(config(seed));
            (0..1000)
                .map(|_| !f.decide("POST", "/nodes/{node}/qemu").is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let fired = run(7).iter().filter(|b| **b).count();
        assert!((400..600).contains(&fired), "{fired}");
    }

    #[test]
    fn other_endpoints_and_exhausted_rules_do_not_fire() {
        let mut f = Faults::default();
        let mut cfg = config(1);
        cfg.rules[0].rate = 1.0;
        cfg.rules[0].max_count = Some(2);
        f.configure(cfg);
        assert!(f.decide("GET", "/nodes/{node}/qemu").is_empty());
        assert_eq!(f.decide("POST", "/nodes/{node}/qemu").len(), 1);
        assert_eq!(f.decide("POST", "/nodes/{node}/qemu").len(), 1);
        assert!(f.decide("POST", "/nodes/{node}/qemu").is_empty());
    }
}
