//! The benchmark's one-line JSON summary (`--json`), the floor of its workload under the
//! simulator's capacity model, and the process CPU time it reports.

use serde_json::{Value, json};

use super::{Measured, Options};

/// Each machine's disk, as `machine_spec` asks for it.
const DISK_BYTES: u64 = 8 << 30;
/// Each machine's memory, as `machine_spec` asks for it.
const MEMORY_MIB: u64 = 512;

/// The shortest makespan the capacity model allows for the benchmark's workload: every machine
/// created on node-local `local-lvm` with one disk and started.
pub fn floor_seconds(options: &Options) -> f64 {
    let model = pve_sim::capacity::model::CapacityModel::pve_default();
    let workload = pve_sim::capacity::Workload::new(
        options.machines as u64,
        options.nodes as u64,
        "local-lvm",
        pve_sim::capacity::Source::Create {
            disks: vec![DISK_BYTES],
        },
        MEMORY_MIB,
    );
    pve_sim::capacity::floor(&model, &workload).as_secs_f64()
}

/// User plus system CPU seconds this process has used so far (Linux `/proc/self/stat`;
/// `None` elsewhere).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ, which Linux fixes at 100 for /proc.
    Some(ticks as f64 / 100.0)
}

/// The summary object: the workload, the floor (when the capacity model was on), and each
/// side's makespan and calls per machine.
pub fn summary(options: &Options, ours: &Measured, baseline: &Measured) -> Value {
    let n = options.machines as f64;
    let side = |m: &Measured| {
        json!({
            "makespan_s": round(m.to_all_ready.as_secs_f64()),
            "calls_per_machine": round(m.provisioning_calls as f64 / n),
        })
    };
    let mut ours_json = side(ours);
    ours_json["idle_calls_per_minute"] = json!(round(ours.idle_calls_per_minute));
    ours_json["cpu_seconds_per_100"] = json!(ours.cpu_seconds.map(|s| round(s * 100.0 / n)));
    json!({
        "machines": options.machines,
        "nodes": options.nodes,
        "capacity_model": options.capacity,
        "floor_s": options.capacity.then(|| round(floor_seconds(options))),
        "ours": ours_json,
        "baselines": { "per_object": side(baseline) },
    })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
