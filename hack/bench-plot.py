"""Draws the controller benchmark's makespan against the number of machines.

Usage: bench-plot.py SUMMARIES.jsonl OUT.png

Each line of SUMMARIES.jsonl is one `--json` summary of
`cargo bench -p pve-operator --bench controller` (hack/bench-plot.sh writes them). One line per
side: the controller, each baseline that ran (Ansible at its own, possibly smaller, N), and the
capacity model's floor (for every N a side ran at). Several runs at one N are averaged.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIDES = [
    ("ours", "pve-operator", "o-"),
    ("per_object", "per-object baseline", "s--"),
    ("terraform_style", "Terraform-style (parallelism 10, 1 s polls)", "^--"),
    ("capmox_style", "CAPMOX-style (10 reconciles, 10 s requeue)", "v--"),
    ("ansible", "Ansible proxmox_kvm (10 forks)", "D--"),
]


def points(summaries):
    """{side: [(machines, makespan_s)]} and {machines: floor_s}, sorted by machines."""
    series = {name: [] for name, _, _ in SIDES}
    floor = {}
    for s in summaries:
        n = s["machines"]
        if s.get("floor_s") is not None:
            floor[n] = s["floor_s"]
        series["ours"].append((n, s["ours"]["makespan_s"]))
        for name, side in (s.get("baselines") or {}).items():
            if side is None or name not in series:
                continue
            at = side.get("machines", n)
            series[name].append((at, side["makespan_s"]))
            if side.get("floor_s") is not None:
                floor[at] = side["floor_s"]
    return {k: mean_by_n(v) for k, v in series.items()}, sorted(floor.items())


def mean_by_n(pairs):
    """One point per N: the mean of the runs at that N (Ansible's default 50 can repeat)."""
    by_n = {}
    for n, value in pairs:
        by_n.setdefault(n, []).append(value)
    return [(n, sum(values) / len(values)) for n, values in sorted(by_n.items())]


def main(jsonl, png):
    with open(jsonl) as f:
        summaries = [json.loads(line) for line in f if line.strip()]
    if not summaries:
        sys.exit(f"{jsonl} holds no summary")
    series, floor = points(summaries)
    nodes = sorted({s["nodes"] for s in summaries})
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, label, style in SIDES:
        if series[name]:
            xs, ys = zip(*series[name])
            ax.plot(xs, ys, style, label=label)
    if floor:
        xs, ys = zip(*floor)
        ax.plot(xs, ys, "k:", label="floor (capacity model)")
    ax.set_xlabel("machines")
    ax.set_ylabel("makespan: all running or Ready (s)")
    ax.set_title(
        "Controller benchmark on pve-sim with its capacity model, "
        f"{'/'.join(map(str, nodes))} nodes"
    )
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(png)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
