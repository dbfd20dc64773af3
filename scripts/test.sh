#!/usr/bin/env bash
# Builds the whole test suite and runs it with CTest: with g++ (Release), then
# with clang++ (Debug). Also checks that single_include/stowage.hpp is up to date.
#   STOWAGE_SANITIZE=address|thread  build the g++ pass with sanitizers instead
#   STOWAGE_COMPILERS="g++"          choose the compilers (default "g++ clang++")
#   STOWAGE_FUZZ=OFF                 skip the 30-second libFuzzer runs of the clang pass
#   STOWAGE_SINGLE_HEADER=OFF        skip the pass against single_include/stowage.hpp
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh clang libclang-rt-14-dev xz-utils gzip libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev libbenchmark-dev
jobs=$(nproc)
sanitize=${STOWAGE_SANITIZE:-}
compilers=${STOWAGE_COMPILERS:-"g++ clang++"}

cmake -P scripts/amalgamate.cmake -- check

for cxx in $compilers; do
  type=Release
  fuzz=OFF
  # The clang pass is a Debug build and also runs each libFuzzer target for 30 s.
  [ "$cxx" = "clang++" ] && type=Debug && fuzz=${STOWAGE_FUZZ:-ON}
  dir="build/test-${cxx}${sanitize:+-$sanitize}"
  echo "== stowage tests: $cxx $type ${sanitize:+(sanitize=$sanitize)}"
  cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$type" \
    -DSTOWAGE_SANITIZE="$sanitize" -DSTOWAGE_BUILD_BENCHMARKS=ON -DSTOWAGE_BUILD_FUZZERS="$fuzz" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 600 ${STOWAGE_CTEST_ARGS:-})
done

# Once more against single_include/stowage.hpp (g++ Release): each stowage/*.hpp
# the tests include is a shim that includes the single header. Every test is
# built (examples, benchmarks and fuzzers are not, to save time); the two long
# end-to-end tests (corruption_test, power_loss_test: the same code paths as
# the passes above, most of this pass's run time) are not run again.
if [ "${STOWAGE_SINGLE_HEADER:-ON}" = ON ] && [ -z "$sanitize" ]; then
  dir=build/test-single-header
  echo "== stowage tests: g++ Release against single_include/stowage.hpp"
  cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DSTOWAGE_TEST_SINGLE_HEADER=ON \
    -DSTOWAGE_BUILD_EXAMPLES=OFF -DSTOWAGE_BUILD_BENCHMARKS=OFF -DSTOWAGE_BUILD_FUZZERS=OFF >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 600 -LE 'fuzz|benchmark-smoke|consumption' \
    -E '^(corruption_test|power_loss_test)$')
fi
