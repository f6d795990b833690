//! The benchmark's Markdown tables: one column for the controller and one per baseline run.

use std::collections::BTreeSet;

use super::baselines::Run;
use super::{Measured, Options, realistic_durations};

/// A column's heading.
fn heading(run: &Run, options: &Options) -> String {
    let name = match run.name {
        "per_object" => "per-object baseline",
        "terraform_style" => "Terraform-style",
        "capmox_style" => "CAPMOX-style",
        "ansible" => "Ansible",
        other => other,
    };
    if run.machines == options.machines {
        name.to_owned()
    } else {
        format!("{name} ({} machines)", run.machines)
    }
}

/// Prints the summary table and the calls by endpoint.
pub fn print_report(options: &Options, ours: &Measured, baselines: &[Run]) {
    let n = options.machines as f64;
    println!(
        "\n{} machines, {} nodes, realistic task durations (create {} ms, start {} ms){}\n",
        options.machines,
        options.nodes,
        realistic_durations().create,
        realistic_durations().start,
        if options.capacity {
            ", capacity model on"
        } else {
            ""
        }
    );
    let row = |measure: &str, ours: String, rest: Vec<String>| {
        let mut cells = vec![measure.to_owned(), ours];
        cells.extend(rest);
        println!("| {} |", cells.join(" | "));
    };
    let mut header: Vec<String> = baselines.iter().map(|r| heading(r, options)).collect();
    row("measure", "pve-operator".into(), header.clone());
    header.iter_mut().for_each(|h| *h = "---".into());
    row("---", "---".into(), header);
    row(
        "time until all are running (Ready)",
        format!("{:.1} s", ours.to_all_ready.as_secs_f64()),
        baselines
            .iter()
            .map(|r| format!("{:.1} s", r.measured.to_all_ready.as_secs_f64()))
            .collect(),
    );
    row(
        "Proxmox calls to provision, per machine",
        format!("{:.1}", ours.provisioning_calls as f64 / n),
        baselines
            .iter()
            .map(|r| format!("{:.1}", r.calls_per_machine()))
            .collect(),
    );
    row(
        "most tasks at once on one node",
        ours.peak_tasks_per_node.to_string(),
        baselines
            .iter()
            .map(|r| r.measured.peak_tasks_per_node.to_string())
            .collect(),
    );
    row(
        "Proxmox calls per idle minute, all machines",
        format!("{:.0}", ours.idle_calls_per_minute),
        baselines
            .iter()
            .map(|r| match r.idle_measured {
                true => format!("{:.0}", r.measured.idle_calls_per_minute),
                false => "-".into(),
            })
            .collect(),
    );
    if let Some(heap) = ours.heap_per_machine {
        row(
            "controller heap per MachineRequest (live bytes after all Ready)",
            format!("{:.1} KiB", heap / 1024.0),
            baselines.iter().map(|_| "-".into()).collect(),
        );
    }

    println!("\nProvisioning calls per machine, by endpoint:\n");
    let mut header: Vec<String> = baselines.iter().map(|r| heading(r, options)).collect();
    row("endpoint", "pve-operator".into(), header.clone());
    header.iter_mut().for_each(|h| *h = "---".into());
    row("---", "---".into(), header);
    let endpoints: BTreeSet<&String> = ours
        .by_endpoint
        .keys()
        .chain(baselines.iter().flat_map(|r| r.measured.by_endpoint.keys()))
        .collect();
    for endpoint in endpoints {
        let of = |m: &Measured, machines: usize| {
            let count = m.by_endpoint.get(endpoint).copied().unwrap_or(0);
            format!("{:.2}", count as f64 / machines.max(1) as f64)
        };
        row(
            &format!("`{endpoint}`"),
            of(ours, options.machines),
            baselines
                .iter()
                .map(|r| of(&r.measured, r.machines))
                .collect(),
        );
    }
}
