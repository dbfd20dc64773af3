#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Regenerates tests/data/format-v3/, a small store in stowage's on-disk format
# version 3 (manifest format 3, chunk format 3), from the headers of the git
# tag `format-v3` (commit 2bccf43, the last commit that wrote those formats),
# with the operations and generator of the format-2 fixture (make_format_v2.cpp).
# Run from anywhere inside the repository; needs git history, g++, Boost and
# LZ4 (scripts/deps.sh). What the store holds: tests/data/fixture_v2.hpp.
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=$(git -C "$root" rev-parse -q --verify format-v3 || echo 2bccf43)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$rev" include | tar -x -C "$work"
g++ -std=c++20 -O1 -I"$work/include" "$root/tests/data/make_format_v2.cpp" -o "$work/make_format_v2" -llz4
out="$root/tests/data/format-v3"
rm -rf "$out"
"$work/make_format_v2" "$out"
rm -f "$out/LOCK"   # a lock file is per machine, not part of the store
ls -l "$out"
