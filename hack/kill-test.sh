#!/usr/bin/env bash
# The kill tests of issue 12 as a series (not run in CI, which runs the handful in
# tests/e2e/kill/ci.rs): `cargo bench -p pve-operator --bench kill` with the local control plane.
# 50 runs per kill mode (the real binary killed with SIGKILL; the controller aborted inside the
# runner), cycling through create, clone, drift and delete; the table is printed and written
# into docs/kill-tests.md. Arguments go to the runner:
#   --runs N  --seed S (or PVE_OPERATOR_KILL_SEED)  --mode sigkill|abort|both  --no-doc
#   --replay SCENARIO:SEED   one run again, as a failing run prints it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
assets=$(hack/envtest/build.sh | tail -n 1)
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$assets}"
exec cargo bench -p pve-operator --bench kill -- "$@"
