#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (docs/fuzzing.md), each for a fixed number of executions,
# and prints per target the executions, the wall time and the crashes. Not part of CI.
#
#   hack/fuzz.sh                       # every target, FUZZ_RUNS executions each
#   hack/fuzz.sh upid pve_error        # only these
#   FUZZ_RUNS=1000000 hack/fuzz.sh     # longer
#
# Needs a nightly toolchain (`rustup toolchain list` shows one); installs cargo-fuzz once into
# ~/.cache/pve-operator/cargo-fuzz. Each target starts from the hand-written real examples in
# fuzz/seeds/<target> and the corpus in fuzz/corpus/<target> (both committed); new inputs are
# added to the corpus, which is then minimised. Crash inputs go to fuzz/artifacts/<target> (not
# committed). Runs at the lowest CPU priority, one job at a time.
#
# Settings (environment):
#   FUZZ_RUNS       executions per target (default 200000)
#   FUZZ_MAX_LEN    longest input in bytes (default 4096)
#   FUZZ_SANITIZER  cargo fuzz --sanitizer (default none: the code is safe Rust, and the
#                   sanitizer halves the speed; `address` works too)
#   FUZZ_TOOLCHAIN  the nightly toolchain (default nightly)
#   FUZZ_CMIN       1 (default): minimise each corpus after its run; 0: keep every new input
#   CARGO_TARGET_DIR  where to build (default fuzz/target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

runs=${FUZZ_RUNS:-200000}
max_len=${FUZZ_MAX_LEN:-4096}
sanitizer=${FUZZ_SANITIZER:-none}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
cmin=${FUZZ_CMIN:-1}
target_dir=${CARGO_TARGET_DIR:-$root/fuzz/target}
cargo_fuzz_version=0.13.2
tools=$HOME/.cache/pve-operator/cargo-fuzz

step() { printf '\n==> %s\n' "$*" >&2; }

command -v rustup >/dev/null || { echo "error: rustup not found; install Rust from https://rustup.rs" >&2; exit 1; }
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "error: no $toolchain toolchain; cargo fuzz needs one (rustup toolchain install nightly)" >&2
  exit 1
fi

if [[ ! -x $tools/bin/cargo-fuzz ]] || ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  step "installing cargo-fuzz $cargo_fuzz_version into $tools (once)"
  nice -n 19 cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --root "$tools"
fi
export PATH=$tools/bin:$PATH

all_targets=$(cargo "+$toolchain" fuzz list --fuzz-dir fuzz)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  read -r -a targets <<<"$(echo $all_targets)"
fi
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all_targets" || { echo "error: no fuzz target $t (have: $(echo $all_targets))" >&2; exit 1; }
done

step "building ${#targets[@]} target(s) (cargo +$toolchain fuzz build, sanitizer $sanitizer)"
for t in "${targets[@]}"; do
  nice -n 19 cargo "+$toolchain" fuzz build --fuzz-dir fuzz -s "$sanitizer" --target-dir "$target_dir" "$t"
done
bin_dir=$target_dir/x86_64-unknown-linux-gnu/release

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
summary=()
failed=0
for t in "${targets[@]}"; do
  corpus=$root/fuzz/corpus/$t
  seeds=$root/fuzz/seeds/$t
  artifacts=$root/fuzz/artifacts/$t
  mkdir -p "$corpus" "$seeds" "$artifacts" "$logs/$t"
  before=$(find "$artifacts" -type f | wc -l)
  step "$t: $runs executions (seeds: $(find "$seeds" -type f | wc -l), corpus: $(find "$corpus" -type f | wc -l) inputs)"
  start=$(date +%s.%N)
  status=0
  # -jobs=1 runs one worker process whose output goes to fuzz-0.log in the working directory.
  (cd "$logs/$t" && nice -n 19 "$bin_dir/$t" "$corpus" "$seeds" -runs="$runs" -jobs=1 -workers=1 \
      -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" >/dev/null 2>&1) || status=$?
  end=$(date +%s.%N)
  log=$logs/$t/fuzz-0.log
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
  if [[ -z $execs ]]; then
    execs=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -n 1 || true)
  fi
  after=$(find "$artifacts" -type f | wc -l)
  crashes=$((after - before))
  if [[ $status -ne 0 || $crashes -ne 0 ]]; then
    failed=1
    echo "---- $t: fuzzer exit status $status; end of its log:" >&2
    tail -n 40 "$log" >&2 || true
    find "$artifacts" -type f -newer "$log" -printf '  artifact: %p\n' >&2 || true
  fi
  if [[ $cmin == 1 && $status -eq 0 ]]; then
    mkdir -p "$logs/$t/min"
    (cd "$logs/$t" && nice -n 19 "$bin_dir/$t" -merge=1 -max_len="$max_len" "$logs/$t/min" "$corpus" "$seeds" >"$logs/$t/cmin.log" 2>&1) &&
      rm -f "$corpus"/* && cp "$logs/$t/min"/* "$corpus"/ 2>/dev/null || true
  fi
  summary+=("$(printf '%-22s %10s execs %8.1f s %3d crash(es)  corpus %d inputs, %s' \
    "$t" "${execs:-?}" "$(awk "BEGIN { print $end - $start }")" "$crashes" \
    "$(find "$corpus" -type f | wc -l)" "$(du -sh --apparent-size "$corpus" | cut -f1)")")
done

step "summary (FUZZ_RUNS=$runs, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
exit $failed
