#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), two at a time, on stable
# Rust (RUSTC_BOOTSTRAP=1). New corpus entries land in fuzz/corpus/<target>/; crashes in
# fuzz/artifacts/<target>/ — copy a fixed crash to fuzz/regressions/<target>/ so the
# corpus replay test (tests/fuzz_corpus.rs) keeps it fixed.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(events decode handshake session events_v2 decode_v2 handshake_v2)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do cargo fuzz build "$t" >/dev/null; done
jobs=${FUZZ_JOBS:-2}
run() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 >"artifacts/$t.log" 2>&1 \
    && echo "$t: ok ($(grep -E 'stat::number_of_executed_units|cov:' "artifacts/$t.log" | tail -2 | tr '\n' ' '))" \
    || { echo "$t: CRASH (see fuzz/artifacts/$t.log)"; return 1; }
}
# Every run's pid, so a crash in a run that ends while others still go is not lost.
pids=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run "$t" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
