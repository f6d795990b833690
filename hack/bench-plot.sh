#!/usr/bin/env bash
# Runs the controller benchmark (crates/pve-operator/benches/controller.rs) with the capacity
# model at several numbers of machines, keeps each run's JSON summary line in
# docs/controller-benchmark.jsonl, and draws docs/controller-benchmark.png: makespan against N
# for the controller, each baseline and the floor (hack/bench-plot.py).
#
#   hack/bench-plot.sh [N ...]        default: 20 50 100 300
#   hack/bench-plot.sh --plot-only    redraws the PNG from the existing JSON lines
#
# Environment: BENCH_NODES (default 3), BENCH_IDLE_SECONDS (10), BENCH_PROFILE (cargo profile,
# default bench), BENCH_ARGS (more bench arguments, e.g. "--ansible-machines 20").
# matplotlib lives in its own cached venv, ~/.cache/pve-operator/bench-pyenv, from
# hack/bench-plot-requirements.txt; the test environment (hack/pyenv.sh) does not carry it, and
# CI does not run this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '[bench-plot] %s\n' "$*" >&2; }
die() { printf '[bench-plot] error: %s\n' "$*" >&2; exit 1; }

jsonl=docs/controller-benchmark.jsonl
png=docs/controller-benchmark.png

plot_env() {
  local cache_root venv requirements key
  cache_root=${PVE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-operator}
  venv="$cache_root/bench-pyenv"
  requirements=hack/bench-plot-requirements.txt
  key=$( (cat "$requirements"; python3 --version) | sha256sum | cut -c1-16)
  if [[ "$(cat "$venv/.complete" 2>/dev/null)" != "$key" ]]; then
    say "creating $venv (matplotlib; first time only)"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "could not create a virtualenv: install python3-venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2 \
      || die "pip install failed; check that PyPI is reachable"
    echo "$key" >"$venv/.complete"
  fi
  echo "$venv"
}

if [[ "${1:-}" != --plot-only ]]; then
  sizes=("$@")
  [[ ${#sizes[@]} -gt 0 ]] || sizes=(20 50 100 300)
  export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/envtest/build.sh | tail -n 1)}"
  export PVE_OPERATOR_PYENV="${PVE_OPERATOR_PYENV:-$(hack/pyenv.sh | tail -n 1)}"
  lines=$(mktemp)
  out=$(mktemp)
  trap 'rm -f "$lines" "$out"' EXIT
  for n in "${sizes[@]}"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number of machines: $n"
    say "$n machines on ${BENCH_NODES:-3} nodes..."
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
    cargo bench --profile "${BENCH_PROFILE:-bench}" -p pve-operator --bench controller -- \
      --machines "$n" --nodes "${BENCH_NODES:-3}" --idle-seconds "${BENCH_IDLE_SECONDS:-10}" \
      --capacity --json ${BENCH_ARGS:-} >"$out"
    tail -n 1 "$out" | tee -a "$lines"
  done
  cat "$lines" >"$jsonl"
  say "wrote $jsonl"
fi

[[ -s "$jsonl" ]] || die "$jsonl is empty: run without --plot-only first"
venv=$(plot_env)
"$venv/bin/python" hack/bench-plot.py "$jsonl" "$png"
say "wrote $png"
