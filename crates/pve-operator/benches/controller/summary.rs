//! The benchmark's one-line JSON summary (`--json`), the floor of its workload under the
//! simulator's capacity model, and the process CPU time it reports.

use serde_json::{Value, json};

use super::baselines::{self, Run};
use super::{Measured, Options};

/// Each machine's disk, as `machine_spec` asks for it.
const DISK_BYTES: u64 = 8 << 30;
/// Each machine's memory, as `machine_spec` asks for it.
const MEMORY_MIB: u64 = 512;

/// The shortest makespan the capacity model allows for the benchmark's workload: every machine
/// created on node-local `local-lvm` with one disk and started.
pub fn floor_seconds(options: &Options) -> f64 {
    floor_seconds_of(options, options.machines)
}

/// [`floor_seconds`] for `machines` machines (a baseline that runs at a smaller N).
pub fn floor_seconds_of(options: &Options, machines: usize) -> f64 {
    let model = pve_sim::capacity::model::CapacityModel::pve_default();
    let workload = pve_sim::capacity::Workload::new(
        machines as u64,
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
/// side's makespan and calls per machine. A baseline that did not run is `null`; one that ran
/// at another N than `machines` (Ansible) names its N in `machines` and, with the capacity
/// model, its own `floor_s`.
pub fn summary(options: &Options, ours: &Measured, runs: &[Run]) -> Value {
    let n = options.machines as f64;
    let mut ours_json = json!({
        "makespan_s": round(ours.to_all_ready.as_secs_f64()),
        "calls_per_machine": round(ours.provisioning_calls as f64 / n),
    });
    ours_json["idle_calls_per_minute"] = json!(round(ours.idle_calls_per_minute));
    ours_json["cpu_seconds_per_100"] = json!(ours.cpu_seconds.map(|s| round(s * 100.0 / n)));
    let mut baselines_json = serde_json::Map::new();
    for name in baselines::NAMES {
        let side = runs.iter().find(|run| run.name == name).map(|run| {
            let mut side = json!({
                "makespan_s": round(run.measured.to_all_ready.as_secs_f64()),
                "calls_per_machine": round(run.calls_per_machine()),
            });
            if name == "ansible" {
                side["machines"] = json!(run.machines);
                side["floor_s"] = json!(
                    options
                        .capacity
                        .then(|| round(floor_seconds_of(options, run.machines)))
                );
            }
            side
        });
        baselines_json.insert(name.to_owned(), json!(side));
    }
    json!({
        "machines": options.machines,
        "nodes": options.nodes,
        "capacity_model": options.capacity,
        "floor_s": options.capacity.then(|| round(floor_seconds(options))),
        "ours": ours_json,
        "baselines": baselines_json,
    })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
