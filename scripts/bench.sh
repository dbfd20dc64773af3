#!/usr/bin/env bash
# Reruns the whole side-by-side comparison of issue 5: stowage against LevelDB,
# RocksDB, LMDB and SQLite (benchmarks/README.md explains every choice).
#   1. installs the peers' Debian packages and python3-matplotlib (scripts/deps.sh);
#   2. builds db_bench and micro_bench in Release in build/bench;
#   3. runs every engine x workload group as a separate process (peak RSS only
#      rises within a process), groups in the order write, read, cold, ycsb, sync, defaults;
#   4. collects the JSON lines into benchmarks/results/latest.jsonl (logs in
#      benchmarks/results/logs/), then prints a markdown table with the ratio
#      stowage / best peer per workload (also benchmarks/results/latest.md) and
#      draws benchmarks/results/ratios.png.
# The scale run (group "scale", not in the default list; issue 13) is fillrandom
# into a fresh store at each record count of SCALE, for every engine, with
# db_bench's default options: ops/s and put latency p50 / p99 / p99.9 / max go to
# benchmarks/results/scale.jsonl, the table to benchmarks/results/scale.md and
# the chart of ops/s against store size to benchmarks/results/scale.png:
#   GROUPS_TO_RUN=scale bash scripts/bench.sh        # 500k, 1M, 2M and 4M records
#   SCALE=4000000 bash scripts/bench.sh              # only the --num=4000000 run
# Environment:
#   NUM=1000000          records per workload
#   CACHE=256M           cache budget of every engine in the write, read, ycsb and sync
#                        groups (the data, ~125 MB decoded, fits: readrandom is warm)
#   COLD_CACHE=          cache budget of readrandom-cold (default: the estimated store
#                        size, NUM x (16 + 50) bytes, / 10)
#   ENGINES="stowage leveldb rocksdb lmdb sqlite"   (those db_bench was built with)
#   GROUPS_TO_RUN="write read cold ycsb sync defaults"   (default; "scale" when SCALE is set; both may be
#                        listed, e.g. GROUPS_TO_RUN="write scale")
#   SCALE="500000 1000000 2000000 4000000"      record counts of the scale group
#   SCALE_CACHE=         cache_bytes of the scale group (default: db_bench's, 64 MiB, which is
#                        stowage's default Options::cache_bytes)
#   MICRO=1              also run micro_bench into results/micro_bench.txt (0: skip; default 0
#                        when only the scale group runs)
#   APPEND=1             keep latest.jsonl and replace only the (engine, group) pairs run now,
#                        e.g. ENGINES=rocksdb GROUPS_TO_RUN="read cold" APPEND=1 bash scripts/bench.sh;
#                        for the scale group: keep scale.jsonl, replace the (engine, records) pairs run now
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev libbenchmark-dev python3-matplotlib

num=${NUM:-1000000}
cache=${CACHE:-256M}
cold_cache=${COLD_CACHE:-$(( num * 66 / 10 ))}
[ "$cold_cache" -lt 262144 ] && cold_cache=262144   # stowage's smallest cache_bytes
if [ -z "${GROUPS_TO_RUN:-}" ] && [ -n "${SCALE:-}" ]; then
  groups=scale
else
  groups=${GROUPS_TO_RUN:-"write read cold ycsb sync defaults"}
fi
sync_num=$(( num / 100 > 0 ? num / 100 : 1 ))
scale_sizes=${SCALE:-"500000 1000000 2000000 4000000"}
scale_cache=${SCALE_CACHE:-}
main_groups=""   # every group but scale, in the order given
run_scale=0
for group in $groups; do
  case $group in
    write|read|cold|ycsb|sync|defaults) main_groups="$main_groups $group" ;;
    scale) run_scale=1 ;;
    *) echo "bench.sh: unknown group '$group' (write read cold ycsb sync defaults scale)" >&2; exit 2 ;;
  esac
done
main_groups=${main_groups# }
if [ "$run_scale" = 1 ]; then
  [ -n "$scale_sizes" ] || { echo "bench.sh: SCALE is empty" >&2; exit 2; }
  for n in $scale_sizes; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: SCALE holds '$n', not a record count" >&2; exit 2; }
  done
fi
micro=${MICRO:-1}
[ -z "$main_groups" ] && micro=${MICRO:-0}

targets=(db_bench)
[ "$micro" = 1 ] && targets+=(micro_bench)
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSTOWAGE_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/bench -j"$(nproc)" --target "${targets[@]}"
bench=build/bench/benchmarks/db_bench
engines=${ENGINES:-$($bench --list_engines | tr '\n' ' ')}

results=benchmarks/results
mkdir -p "$results/logs"
dbroot=build/bench/db
rm -rf "$dbroot"
mkdir -p "$dbroot"
out="$results/latest.jsonl"
scale_out="$results/scale.jsonl"
if [ -n "$main_groups" ]; then
  [ "${APPEND:-0}" = 1 ] && [ -f "$out" ] || : > "$out"
fi
if [ "$run_scale" = 1 ]; then
  [ "${APPEND:-0}" = 1 ] && [ -f "$scale_out" ] || : > "$scale_out"
fi

machine() {  # file run-line: the machine description, or with APPEND=1 a "rerun" line added to it
  local file=$1 run_line=$2
  if [ "${APPEND:-0}" = 1 ] && [ -f "$file" ]; then
    echo "rerun: ENGINES=\"${ENGINES:-all}\" GROUPS_TO_RUN=\"$groups\"${3:-} $(date -u '+%Y-%m-%d %H:%M UTC')   commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')" >> "$file"
  else
    {
      echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')   commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
      echo "uname: $(uname -srmo)"
      lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|L2 cache|L3 cache|Hypervisor vendor)' | sed 's/  */ /g'
      echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')   filesystem: $(df -T "$dbroot" | awk 'NR==2 {print $2}')"
      echo "compiler: $(c++ --version | head -1)"
      echo "packages: $(dpkg-query -W -f='${Package} ${Version}, ' libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev liblz4-dev 2>/dev/null)"
      echo "$run_line"
    } > "$file.new"
    mv "$file.new" "$file"
  fi
  cat "$file"
}
if [ -n "$main_groups" ]; then
  machine "$results/machine.txt" "run: NUM=$num CACHE=$cache COLD_CACHE=$cold_cache sync_num=$sync_num"
fi
if [ "$run_scale" = 1 ]; then
  machine "$results/scale-machine.txt" \
    "run: SCALE=\"$scale_sizes\" fillrandom, cache_bytes ${scale_cache:-64M (db_bench default)}" " SCALE=\"$scale_sizes\""
fi

failures=0
collect() {  # jsonl prefix log db_bench-flags...: runs db_bench (output in log); on success the JSON
             # lines of jsonl that start with prefix are replaced by the run's
  local jsonl=$1 prefix=$2 log=$3
  shift 3
  if "$bench" "$@" > "$log" 2>&1; then
    grep -v -F "$prefix" "$jsonl" > "$jsonl.tmp" || true
    grep '^{' "$log" >> "$jsonl.tmp"
    mv "$jsonl.tmp" "$jsonl"
    sed -n '/^workload/,/^(write/p' "$log" | head -n -1
  else
    echo "   FAILED (see $log):"; tail -5 "$log"
    failures=$((failures + 1))
  fi
}
run() {  # engine group flags...: one group of the comparison into latest.jsonl
  local engine=$1 group=$2
  shift 2
  echo "== $engine / $group"
  collect "$out" "{\"engine\":\"$engine\",\"group\":\"$group\"," "$results/logs/$engine-$group.log" \
    --engine="$engine" --group="$group" --num="$num" "$@"
}

for group in $main_groups; do
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
      # Issue 13's goals as a new user meets them: each engine's own default
      # cache (stowage 64 MiB, LevelDB 8 MiB, ...) instead of CACHE, the fill
      # not flushed, then close + open, random reads and random erases.
      defaults) run "$engine" defaults --db="$dbroot/$engine-defaults" --no_flush --cache_bytes=default \
               --benchmarks=fillrandom,reopen,readrandom,deleterandom
             rm -rf "$dbroot/$engine-defaults" ;;
    esac
  done
done

# The scale run: fillrandom into a fresh store at each size, every engine in its
# own process, db_bench's defaults (so every engine's default-sized budget).
if [ "$run_scale" = 1 ]; then
  for n in $scale_sizes; do
    for engine in $engines; do
      echo "== $engine / scale / $n records"
      collect "$scale_out" "{\"engine\":\"$engine\",\"group\":\"scale\",\"workload\":\"fillrandom\",\"num\":$n," \
        "$results/logs/$engine-scale-$n.log" --engine="$engine" --group=scale --num="$n" --benchmarks=fillrandom \
        --db="$dbroot/$engine-scale" ${scale_cache:+--cache_bytes="$scale_cache"}
      rm -rf "$dbroot/$engine-scale"
    done
  done
fi
rm -rf "$dbroot"

if [ "$micro" = 1 ]; then
  echo "== micro_bench"
  build/bench/benchmarks/micro_bench > "$results/micro_bench.txt" 2>&1 || failures=$((failures + 1))
fi

if [ -n "$main_groups" ]; then
  echo
  /usr/bin/python3 benchmarks/report.py "$out" --markdown "$results/latest.md" --chart "$results/ratios.png" \
    --machine "$results/machine.txt"
  echo
  echo "results: $root/$out, $root/$results/latest.md, $root/$results/ratios.png"
fi
if [ "$run_scale" = 1 ]; then
  echo
  /usr/bin/python3 benchmarks/scale_chart.py "$scale_out" --markdown "$results/scale.md" --chart "$results/scale.png" \
    --machine "$results/scale-machine.txt"
  echo
  echo "scale results: $root/$scale_out, $root/$results/scale.md, $root/$results/scale.png"
fi
[ "$failures" -eq 0 ] || { echo "bench.sh: $failures run(s) failed" >&2; exit 1; }
