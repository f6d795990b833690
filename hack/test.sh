#!/usr/bin/env bash
# The project's one test command (the README's): lints, prepares what the tests need through the
# project's own scripts (the local control plane, helm and kustomize, the Python clients; cached after the first run), runs every test of
# the workspace, checks that no control-plane process outlived the tests, and ends with a summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
started=$SECONDS

if [[ "${CI:-}" == true ]]; then
  # CI runs in a fresh clone: keep compiled dependencies between runs, and insist that
  # Cargo.lock is committed and current.
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pve-operator/target}
  export CARGO_TERM_COLOR=never
  locked=(--locked)
else
  locked=()
fi

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }

step "local control plane: kube-apiserver and etcd (hack/envtest/build.sh)"
assets=$(hack/envtest/build.sh | tail -n 1)
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$assets}"

step "deployment tools: helm and kustomize (hack/helm/build.sh)"
tools=$(hack/helm/build.sh | tail -n 1)
export PVE_OPERATOR_DEPLOY_TOOLS="${PVE_OPERATOR_DEPLOY_TOOLS:-$tools}"

step "Python tools: proxmoxer, Ansible, prometheus_client (hack/pyenv.sh)"
pyenv=$(hack/pyenv.sh | tail -n 1)
export PVE_OPERATOR_PYENV="${PVE_OPERATOR_PYENV:-$pyenv}"

# Live (non-zombie) processes running one of the control-plane binaries.
control_plane_pids() {
  local pid exe
  for pid in $(pgrep -f "kube-apiserver|etcd" || true); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ "$exe" == */kube-apiserver || "$exe" == */etcd ]] || continue
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && continue
    echo "$pid"
  done | sort
}
before=$(control_plane_pids)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy "${locked[@]}" --workspace --all-targets -- -D warnings

step "cargo test --workspace"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test "${locked[@]}" --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step "controller benchmark smoke run (hack/bench-smoke.sh)"
if ! hack/bench-smoke.sh "${locked[@]}"; then
  echo "error: the controller benchmark's smoke run failed; its output is above" >&2
  status=1
fi

step "no control-plane process outlives the tests"
leftover=""
for _ in $(seq 1 100); do
  leftover=$(comm -13 <(echo "$before") <(control_plane_pids) | tr '\n' ' ')
  [[ -z "${leftover// }" ]] && break
  sleep 0.1
done
if [[ -n "${leftover// }" ]]; then
  echo "error: control-plane processes survived the tests: $leftover" >&2
  ps -o pid,ppid,etime,args -p ${leftover// /,} >&2 || true
  status=1
else
  echo "none left" >&2
fi

# One closing line over all test binaries (cargo prints one 'test result' per binary).
read -r passed failed ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?/) p += $i
      if ($(i+1) ~ /^failed;?/) f += $i
      if ($(i+1) ~ /^ignored;?/) g += $i
    } } END { printf "%d %d %d\n", p, f, g }' "$log")
echo
echo "Finished in $((SECONDS - started))s."
if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; fi
echo "tests: $passed passed, $failed failed, $ignored skipped"
exit "$status"
