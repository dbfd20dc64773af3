#!/usr/bin/env bash
# Builds and runs the quick-start example on a store in ./stowage-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/example -DCMAKE_BUILD_TYPE=Release -DSTOWAGE_BUILD_TESTS=OFF -DSTOWAGE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/example --target quickstart -j"$(nproc)"
./build/example/examples/quickstart "${1:-stowage-demo}"
