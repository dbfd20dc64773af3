#!/usr/bin/env bash
# Regenerates tests/data/format-v1/, a small store written by stowage's on-disk
# format version 1, from the headers of the git tag `format-v1` (commit
# e6dd2af, the last commit that wrote format 1). Run from anywhere inside
# the repository; needs git history, g++, Boost and LZ4 (scripts/deps.sh).
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=$(git -C "$root" rev-parse -q --verify format-v1 || echo e6dd2af)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$rev" include | tar -x -C "$work"
g++ -std=c++20 -O1 -I"$work/include" "$root/tests/data/make_format_v1.cpp" -o "$work/make_format_v1" -llz4
out="$root/tests/data/format-v1"
rm -rf "$out"
"$work/make_format_v1" "$out"
rm -f "$out/LOCK"   # a lock file is per machine, not part of the store
ls -l "$out"
