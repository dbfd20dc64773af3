#!/usr/bin/env bash
# Reruns the whole side-by-side comparison of issue 5: stowage against LevelDB,
# RocksDB, LMDB and SQLite (benchmarks/README.md explains every choice).
#   1. installs the peers' Debian packages and python3-matplotlib (scripts/deps.sh);
#   2. builds db_bench and micro_bench in Release in build/bench;
#   3. runs every engine x workload group as a separate process (peak RSS only
#      rises within a process), groups in the order write, read, cold, ycsb, sync;
#   4. collects the JSON lines into benchmarks/results/latest.jsonl (logs in
#      benchmarks/results/logs/), then prints a markdown table with the ratio
#      stowage / best peer per workload (also benchmarks/results/latest.md) and
#      draws benchmarks/results/ratios.png.
# Environment:
#   NUM=1000000          records per workload
#   CACHE=256M           cache budget of every engine in the write, read, ycsb and sync
#                        groups (the data, ~125 MB decoded, fits: readrandom is warm)
#   COLD_CACHE=          cache budget of readrandom-cold (default: the estimated store
#                        size, NUM x (16 + 50) bytes, / 10)
#   ENGINES="stowage leveldb rocksdb lmdb sqlite"   (those db_bench was built with)
#   GROUPS_TO_RUN="write read cold ycsb sync"
#   MICRO=1              also run micro_bench into results/micro_bench.txt (0: skip)
#   APPEND=1             keep latest.jsonl and replace only the (engine, group) pairs run now,
#                        e.g. ENGINES=rocksdb GROUPS_TO_RUN="read cold" APPEND=1 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev libbenchmark-dev python3-matplotlib

num=${NUM:-1000000}
cache=${CACHE:-256M}
cold_cache=${COLD_CACHE:-$(( num * 66 / 10 ))}
[ "$cold_cache" -lt 262144 ] && cold_cache=262144   # stowage's smallest cache_bytes
groups=${GROUPS_TO_RUN:-"write read cold ycsb sync"}
sync_num=$(( num / 100 > 0 ? num / 100 : 1 ))

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSTOWAGE_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/bench -j"$(nproc)" --target db_bench micro_bench
bench=build/bench/benchmarks/db_bench
engines=${ENGINES:-$($bench --list_engines | tr '\n' ' ')}

results=benchmarks/results
mkdir -p "$results/logs"
dbroot=build/bench/db
rm -rf "$dbroot"
mkdir -p "$dbroot"
out="$results/latest.jsonl"
[ "${APPEND:-0}" = 1 ] && [ -f "$out" ] || : > "$out"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')   commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "uname: $(uname -srmo)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|L2 cache|L3 cache|Hypervisor vendor)' | sed 's/  */ /g'
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')   filesystem: $(df -T "$dbroot" | awk 'NR==2 {print $2}')"
  echo "compiler: $(c++ --version | head -1)"
  echo "packages: $(dpkg-query -W -f='${Package} ${Version}, ' libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev liblz4-dev 2>/dev/null)"
  echo "run: NUM=$num CACHE=$cache COLD_CACHE=$cold_cache sync_num=$sync_num"
} > "$results/machine.txt.new"
if [ "${APPEND:-0}" = 1 ] && [ -f "$results/machine.txt" ]; then
  { cat "$results/machine.txt"; echo "rerun: ENGINES=\"${ENGINES:-all}\" GROUPS_TO_RUN=\"$groups\" $(date -u '+%Y-%m-%d %H:%M UTC')"; } \
    > "$results/machine.txt.tmp"
  mv "$results/machine.txt.tmp" "$results/machine.txt"
  rm -f "$results/machine.txt.new"
else
  mv "$results/machine.txt.new" "$results/machine.txt"
fi
cat "$results/machine.txt"

failures=0
run() {  # engine group flags...
  local engine=$1 group=$2
  shift 2
  local log="$results/logs/$engine-$group.log"
  echo "== $engine / $group"
  if "$bench" --engine="$engine" --group="$group" --num="$num" "$@" > "$log" 2>&1; then
    grep -v "^{\"engine\":\"$engine\",\"group\":\"$group\"," "$out" > "$out.tmp" || true
    grep '^{' "$log" >> "$out.tmp"
    mv "$out.tmp" "$out"
    sed -n '/^workload/,/^(write/p' "$log" | head -n -1
  else
    echo "   FAILED (see $log):"; tail -5 "$log"
    failures=$((failures + 1))
  fi
}

for group in $groups; do
  for engine in $engines; do
    case $group in
      write) run "$engine" write --cache_bytes="$cache" --db="$dbroot/$engine-write" \
               --benchmarks=fillseq,fillbatch,fillrandom,overwrite
             rm -rf "$dbroot/$engine-write" ;;
      read)  run "$engine" read --cache_bytes="$cache" --db="$dbroot/$engine-read" \
               --benchmarks=load,warmup,readrandom,readmissing,readseq ;;
      cold)  if [ -d "$dbroot/$engine-read" ]; then
               run "$engine" cold --cache_bytes="$cold_cache" --db="$dbroot/$engine-read" --use_existing_db \
                 --benchmarks=readrandom-cold
             else
               echo "== $engine / cold: skipped (needs the store of the read group)"
             fi ;;
      ycsb)  run "$engine" ycsb --cache_bytes="$cache" --db="$dbroot/$engine-ycsb" \
               --benchmarks=load,ycsb-a,ycsb-b,ycsb-c,ycsb-f,ycsb-e,deleterandom
             rm -rf "$dbroot/$engine-ycsb" ;;
      sync)  run "$engine" sync --cache_bytes="$cache" --db="$dbroot/$engine-sync" --sync_num="$sync_num" \
               --benchmarks=fillsync,fillsync2
             rm -rf "$dbroot/$engine-sync" ;;
      *) echo "bench.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
  done
done
rm -rf "$dbroot"

if [ "${MICRO:-1}" = 1 ]; then
  echo "== micro_bench"
  build/bench/benchmarks/micro_bench > "$results/micro_bench.txt" 2>&1 || failures=$((failures + 1))
fi

echo
/usr/bin/python3 benchmarks/report.py "$out" --markdown "$results/latest.md" --chart "$results/ratios.png" \
  --machine "$results/machine.txt"
echo
echo "results: $root/$out, $root/$results/latest.md, $root/$results/ratios.png"
[ "$failures" -eq 0 ] || { echo "bench.sh: $failures run(s) failed" >&2; exit 1; }
