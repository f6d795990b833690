#!/usr/bin/env bash
# A small run of the controller benchmark (crates/pve-operator/benches/controller.rs) so that it
# never rots: 20 machines on 2 nodes with the capacity model, the controller against the
# per-object and Terraform-style baselines (the CAPMOX-style one needs 20 s of requeues at any N,
# Ansible a minute: both are left to full runs). Built with the dev profile, so after
# `cargo test --workspace` only the bench binary itself compiles. Fails when the bench fails or
# when its last line is not the JSON summary with the keys docs/controller-benchmark.md names.
# Needs KUBEBUILDER_ASSETS (hack/envtest/build.sh) and python3 (PVE_OPERATOR_PYENV's, or the
# system's). Extra arguments go to cargo (e.g. --locked). No number is asserted on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=python3
if [[ -n "${PVE_OPERATOR_PYENV:-}" && -x "$PVE_OPERATOR_PYENV/bin/python" ]]; then
  python="$PVE_OPERATOR_PYENV/bin/python"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
started=$SECONDS
cargo bench "$@" --profile dev -p pve-operator --bench controller -- \
  --machines 20 --nodes 2 --idle-seconds 2 --capacity --json \
  --baselines per_object,terraform_style >"$out"
tail -n 1 "$out" | "$python" -c '
import json, sys
summary = json.loads(sys.stdin.read())
def need(obj, path):
    for key in path.split("."):
        if not isinstance(obj, dict) or obj.get(key) is None:
            sys.exit("bench smoke: the JSON summary has no " + path + ": " + json.dumps(summary))
        obj = obj[key]
    return obj
for path in ["machines", "nodes", "floor_s", "ours.makespan_s", "ours.calls_per_machine",
             "ours.idle_calls_per_minute", "baselines.per_object.makespan_s",
             "baselines.per_object.calls_per_machine", "baselines.terraform_style.makespan_s",
             "baselines.terraform_style.calls_per_machine"]:
    need(summary, path)
if summary["machines"] != 20:
    sys.exit("bench smoke: expected 20 machines, got " + str(summary["machines"]))
print("bench smoke: JSON summary ok: " + json.dumps(summary))
'
echo "bench smoke: done in $((SECONDS - started))s" >&2
