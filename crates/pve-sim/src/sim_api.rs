//! The simulator's own endpoints, outside `/api2` and without authentication (the simulator
//! listens on loopback for tests and benchmarks):
//! `GET|DELETE /_sim/stats`, `GET /_sim/requests` (every request received, in order, with its
//! caller and arrival time; cleared with the stats), `GET|PUT /_sim/faults`, `GET /_sim/state`,
//! `POST /_sim/reset`, `POST /_sim/clock` (`{"advance_secs": N}`).

use axum::body::{Body, Bytes};
use axum::http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::pipeline::Shared;
use crate::response::plain_json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    advance_secs: i64,
}

/// Handles `/_sim{rest}`.
pub fn handle(shared: &Shared, method: &str, rest: &str, body: &Bytes) -> Response<Body> {
    let mut guard = shared.lock();
    let sim = &mut *guard;
    let now = sim.now_ms();
    sim.advance(now);
    match (method, rest) {
        ("GET", "/stats") => {
            let mut v = serde_json::to_value(&sim.stats).unwrap_or(Value::Null);
            v["tasks_in_flight"] = json!(sim.state.tasks_in_flight());
            if let Some(counters) = sim.capacity_stats() {
                v["capacity"] = json!(counters);
            }
            v["vms"] = json!(sim.state.vms.len());
            plain_json(200, &v)
        }
        ("DELETE", "/stats") => {
            sim.stats = Default::default();
            sim.requests = Default::default();
            sim.storages.reset_counters();
            plain_json(200, &Value::Null)
        }
        ("GET", "/requests") => plain_json(200, &json!(sim.requests.records())),
        ("GET", "/faults") => plain_json(
            200,
            &json!({ "config": sim.faults.config(), "fired": sim.faults.fired() }),
        ),
        ("PUT" | "POST", "/faults") => match serde_json::from_slice::<FaultConfig>(body) {
            Ok(cfg) => {
                sim.faults.configure(cfg);
                plain_json(200, &Value::Null)
            }
            Err(e) => plain_json(400, &json!({ "error": e.to_string() })),
        },
        ("GET", "/state") => {
            let mut v = serde_json::to_value(&sim.state).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.remove("keys");
                if let Some(Value::Object(tls)) = map.get_mut("tls") {
                    tls.remove("key_pem");
                }
            }
            plain_json(200, &v)
        }
        ("POST", "/reset") => {
            sim.state = sim.initial.clone();
            sim.stats = Default::default();
            sim.requests = Default::default();
            sim.faults = Default::default();
            sim.storages = Default::default();
            sim.dirty = true;
            shared.persist_notify.notify_one();
            plain_json(200, &Value::Null)
        }
        ("POST", "/clock") => match serde_json::from_slice::<ClockChange>(body) {
            Ok(c) => {
                sim.state.clock_offset_ms += c.advance_secs * 1000;
                plain_json(
                    200,
                    &json!({ "offset_secs": sim.state.clock_offset_ms / 1000 }),
                )
            }
            Err(e) => plain_json(400, &json!({ "error": e.to_string() })),
        },
        _ => plain_json(
            404,
            &json!({ "error": format!("no such simulator endpoint: {method} /_sim{rest}") }),
        ),
    }
}
