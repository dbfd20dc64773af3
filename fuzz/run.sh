#!/usr/bin/env bash
# Builds stowage's libFuzzer targets with clang into build/fuzz and runs each
# on a copy of the checked-in seed corpus (fuzz/corpus/<target>), then prints
# executions, exec/s, coverage and any crash per target.
#   FUZZ_SECONDS=600        run time per target (-max_total_time)
#   FUZZ_JOBS=1             targets run at once (2: two targets in parallel)
#   FUZZ_TARGETS="chunk manifest wal serializer"
#   FUZZ_TIMEOUT=10         seconds one input may take before it counts as a hang
#   FUZZ_MALLOC_MB=512      a single allocation above this is a finding
#   FUZZ_ARGS="..."         extra libFuzzer flags
# Each run keeps its grown corpus, logs and crash inputs under
# build/fuzz/runs/<timestamp>/; copy a crash input to fuzz/regressions/<target>/
# to replay it in CTest (fuzz_<target>_regressions) from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-1}
targets=${FUZZ_TARGETS:-"chunk manifest wal serializer"}
hang=${FUZZ_TIMEOUT:-10}
malloc_mb=${FUZZ_MALLOC_MB:-512}
build=build/fuzz

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTOWAGE_BUILD_FUZZERS=ON -DSTOWAGE_BUILD_TESTS=OFF -DSTOWAGE_BUILD_EXAMPLES=OFF \
  -DSTOWAGE_BUILD_BENCHMARKS=OFF -DSTOWAGE_INSTALL=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)

run_dir="$build/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
echo "== fuzzing ${targets// /, } for ${secs}s each, $jobs at a time; output in $run_dir"

run_one() {
  local t=$1
  local corpus="$run_dir/corpus/$t" artifacts="$run_dir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp -r "fuzz/corpus/$t/." "$corpus/"
  local rc=0
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb="$malloc_mb" \
    -timeout="$hang" -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" \
    >"$run_dir/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$run_dir/$t.rc"
  echo "   fuzz_$t finished (exit $rc)"
}

running=0
for t in $targets; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "   fuzz_$t started"
  run_one "$t" &
  running=$((running + 1))
done
wait || true

stat_of() { sed -n "s/^stat::$2: *//p" "$run_dir/$1.log" | tail -1; }
status=0
printf '\n%-11s %12s %9s %8s %8s %7s %7s %s\n' target execs exec/s cov-seed cov-end ft-end units result
for t in $targets; do
  log="$run_dir/$t.log"
  execs=$(stat_of "$t" number_of_executed_units)
  eps=$(stat_of "$t" average_exec_per_sec)
  cov0=$(grep -m1 -o 'INITED cov: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov1=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*$' || true)
  ft1=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*$' || true)
  units=$(ls "$run_dir/corpus/$t" | wc -l)
  rc=$(cat "$run_dir/$t.rc")
  crashes=$(ls "$run_dir/artifacts/$t" 2>/dev/null | wc -l)
  result=ok
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    result="FAILED (exit $rc, $crashes artifact(s) in $run_dir/artifacts/$t)"
    status=1
  fi
  printf '%-11s %12s %9s %8s %8s %7s %7s %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov0:-?}" "${cov1:-?}" "${ft1:-?}" \
    "$units" "$result"
done
echo "(cov = edges covered after loading the seeds / at the end; units = corpus files at the end; logs: $run_dir/<target>.log)"
exit "$status"
