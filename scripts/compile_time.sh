#!/usr/bin/env bash
# Measures what using stowage costs at compile time (g++ -std=c++20 -O0 -c of
# one small file), beside nlohmann/json and SQLite doing comparable work:
#   scripts/compile_time.sh            summary table
#   scripts/compile_time.sh --detail   also each stowage header and each
#                                      third-party header it includes, alone
# Environment: CXX (default g++), STOWAGE_CT_RUNS (default 5 runs per file),
# STOWAGE_CT_OPT (default -O0; -O2 for optimised builds).
# Uses hyperfine when it is installed (scripts/deps.sh installs it), else
# repeated timing in this script (mean and min of the runs). On a busy machine
# trust the min and the CPU column more than the mean.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh hyperfine python3 bc nlohmann-json3-dev libsqlite3-dev
root=$(pwd)
cxx=${CXX:-g++}
runs=${STOWAGE_CT_RUNS:-5}
detail=0
[ "${1:-}" = "--detail" ] && detail=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++20 "${STOWAGE_CT_OPT:--O0}" -c -I"$root/include")

cat >"$work/empty.cpp" <<'EOF'
int main() { return 0; }
EOF
cat >"$work/stowage_fwd.cpp" <<'EOF'
#include <stowage/stowage_fwd.hpp>
struct Holder { stowage::Options* options = nullptr; stowage::Error* error = nullptr; };
int main() { Holder h; return h.options == nullptr ? 0 : 1; }
EOF
cat >"$work/stowage_include.cpp" <<'EOF'
#include <stowage/stowage.hpp>
int main() { return 0; }
EOF
cat >"$work/stowage_open.cpp" <<'EOF'
#include <stowage/stowage.hpp>
#include <cstdint>
#include <string>
int main() {
  stowage::Storage<std::uint64_t, std::string> db("ct-store");
  db.put(1, "one");
  auto v = db.get(1);
  for (auto const& [k, s] : db.scan()) (void)k, (void)s;
  return v && *v == "one" ? 0 : 1;
}
EOF
# The same file in the opt-in separate compilation mode: the engine is only
# declared here (one other translation unit includes <stowage/engine_src.hpp>).
{ echo '#define STOWAGE_SEPARATE_COMPILATION'; cat "$work/stowage_open.cpp"; } >"$work/stowage_open_separate.cpp"
cat >"$work/nlohmann_json.cpp" <<'EOF'
#include <nlohmann/json.hpp>
#include <fstream>
int main() {
  nlohmann::json db;
  db["1"] = "one";
  std::ofstream("ct.json") << db.dump();
  auto back = nlohmann::json::parse(std::ifstream("ct.json"));
  return back["1"].get<std::string>() == "one" ? 0 : 1;
}
EOF
cat >"$work/sqlite3.cpp" <<'EOF'
#include <sqlite3.h>
int main() {
  sqlite3* db = nullptr;
  if (sqlite3_open("ct.db", &db) != SQLITE_OK) return 1;
  sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS kv(k INTEGER PRIMARY KEY, v TEXT);"
                   "INSERT OR REPLACE INTO kv VALUES(1, 'one');", nullptr, nullptr, nullptr);
  return sqlite3_close(db);
}
EOF

# time_files NAME=FILE...: one row per file (mean, min of $runs compiles; preprocessed lines).
time_files() {
  local title=$1
  shift
  echo
  echo "### $title ($cxx, -std=c++20 ${STOWAGE_CT_OPT:--O0} -c, $runs runs)"
  echo
  if command -v hyperfine >/dev/null; then
    local args=()
    for nf in "$@"; do
      args+=(-n "${nf%%=*}" "$cxx ${flags[*]} $work/${nf#*=} -o $work/out.o")
    done
    hyperfine -N --warmup 1 --runs "$runs" --style none --export-json "$work/r.json" "${args[@]}" >/dev/null
    echo "| file | wall mean ± sd [s] | wall min [s] | CPU user+sys [s] | lines after -E |"
    echo "|:---|---:|---:|---:|---:|"
    local i=0
    for nf in "$@"; do
      python3 - "$work/r.json" "$i" "$("$cxx" "${flags[@]}" -E "$work/${nf#*=}" | grep -vc '^#')" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print(f"| {r['command']} | {r['mean']:.3f} ± {r['stddev'] or 0:.3f} | {r['min']:.3f} | {r['user'] + r['system']:.3f} | {sys.argv[3]} |")
with open(sys.argv[1] + ".tsv", "a") as out:
    out.write(f"{r['command']}\t{r['user'] + r['system']}\n")
PY
      i=$((i + 1))
    done
  else
    echo "| file | wall mean [s] | wall min [s] | lines after -E |"
    echo "|:---|---:|---:|---:|"
    for nf in "$@"; do
      local f=$work/${nf#*=} total=0 min="" t0 t
      "$cxx" "${flags[@]}" "$f" -o "$work/out.o"  # warm-up
      for _ in $(seq "$runs"); do
        t0=$(date +%s.%N)
        "$cxx" "${flags[@]}" "$f" -o "$work/out.o"
        t=$(echo "$(date +%s.%N) - $t0" | bc -l)
        total=$(echo "$total + $t" | bc -l)
        if [ -z "$min" ] || [ "$(echo "$t < $min" | bc -l)" = 1 ]; then min=$t; fi
      done
      printf '%s\t%s\n' "${nf%%=*}" "$(echo "$total / $runs" | bc -l)" >>"$work/r.json.tsv"
      printf '| %s | %.3f | %.3f | %s |\n' "${nf%%=*}" "$(echo "$total / $runs" | bc -l)" "$min" \
        "$("$cxx" "${flags[@]}" -E "$f" | grep -vc '^#')"
    done
  fi
}

# The rows the goals below compare.
open_row="stowage.hpp, opens a store, put/get/scan"
separate_row="the same, STOWAGE_SEPARATE_COMPILATION"
nlohmann_row="nlohmann/json.hpp, builds/dumps/parses"
time_files "What a program pays to use each" \
  "empty main=empty.cpp" \
  "stowage_fwd.hpp, names types=stowage_fwd.cpp" \
  "stowage.hpp, included only=stowage_include.cpp" \
  "$open_row=stowage_open.cpp" \
  "$separate_row=stowage_open_separate.cpp" \
  "$nlohmann_row=nlohmann_json.cpp" \
  "sqlite3.h, opens a db, exec=sqlite3.cpp"

# The issue-13 goals, as ratios of CPU time to the nlohmann/json file's in the
# same run: header-only at most 1x, separate compilation at most 0.5x.
# (CPU time with hyperfine, else the mean wall time).
if [ -f "$work/r.json.tsv" ]; then
  python3 - "$work/r.json.tsv" "$open_row" "$separate_row" "$nlohmann_row" <<'PY'
import sys
r = dict((name, float(t)) for name, t in (l.rstrip("\n").split("\t") for l in open(sys.argv[1])))
open_row, separate_row, nlohmann_row = sys.argv[2:5]
base = r[nlohmann_row]
print()
print("Against the nlohmann/json file (goals: header-only <= 1x, separate <= 0.5x):")
print(f"  header-only ({open_row}): {r[open_row] / base:.2f}x")
print(f"  {separate_row}: {r[separate_row] / base:.2f}x")
PY
fi

if [ $detail -eq 1 ]; then
  files=()
  for h in include/stowage/*.hpp; do
    n=$(basename "$h" .hpp)
    [ "$n" = stowage_fwd ] && continue
    printf '#include <stowage/%s.hpp>\nint main() { return 0; }\n' "$n" >"$work/h_$n.cpp"
    files+=("stowage/$n.hpp=h_$n.cpp")
  done
  time_files "Each stowage header alone (with what it includes)" "${files[@]}"
  files=()
  i=0
  for inc in "boost/intrusive/list.hpp" \
             "lz4.h" "xxhash.h" "filesystem" "functional" "map" "unordered_map" "variant" \
             "shared_mutex" "condition_variable" "thread" "chrono" "string"; do
    i=$((i + 1))
    def=""
    [ "$inc" = xxhash.h ] && def="#define XXH_INLINE_ALL"
    printf '%s\n#include <%s>\nint main() { return 0; }\n' "$def" "$inc" >"$work/d_$i.cpp"
    files+=("<$inc>=d_$i.cpp")
  done
  time_files "Third-party and standard headers stowage includes, alone" "${files[@]}"

  # What each group of dependencies adds on top of the others.
  grep -h '^#include <' include/stowage/*.hpp | grep -v 'boost/\|lz4\|xxhash\|stowage' | sort -u >"$work/std.h"
  { cat "$work/std.h"; echo 'int main() { return 0; }'; } >"$work/i_std.cpp"
  { cat "$work/std.h"; printf '#include <boost/intrusive/list.hpp>\n#include <lz4.h>\n#define XXH_INLINE_ALL\n#include <xxhash.h>\nint main() { return 0; }\n'; } >"$work/i_tp.cpp"
  for n in cache chunk compression concepts error eviction file key_codec lock options serializer wal manifest index write_buffer bloom; do
    echo "#include <stowage/$n.hpp>"
  done >"$work/rest.h"
  { cat "$work/rest.h"; echo 'int main() { return 0; }'; } >"$work/i_rest.cpp"
  time_files "What each group of includes adds" \
    "the standard headers stowage includes=i_std.cpp" \
    "+ Boost.Intrusive, lz4.h, xxhash.h (inline)=i_tp.cpp" \
    "stowage headers but storage.hpp and file_lock.hpp=i_rest.cpp" \
    "stowage.hpp=stowage_include.cpp"
fi
