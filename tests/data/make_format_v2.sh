#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Regenerates tests/data/format-v2/, a small store in stowage's on-disk format
# version 2 (manifest format 2, chunk format 2), from the headers of the git
# tag `format-v2` (commit 28a902a, the last commit that wrote those formats).
# Run from anywhere inside the repository; needs git history, g++, Boost and
# LZ4 (scripts/deps.sh). What the store holds: tests/data/fixture_v2.hpp.
# make_format_v3.sh runs this script with the same operations against the
# headers that wrote format 3 (FIXTURE_TAG, FIXTURE_COMMIT, FIXTURE_DIR).
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=$(git -C "$root" rev-parse -q --verify "${FIXTURE_TAG:-format-v2}" || echo "${FIXTURE_COMMIT:-28a902a}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$rev" include | tar -x -C "$work"
g++ -std=c++20 -O1 -I"$work/include" "$root/tests/data/make_format_v2.cpp" -o "$work/make_format_v2" -llz4
out="$root/tests/data/${FIXTURE_DIR:-format-v2}"
rm -rf "$out"
"$work/make_format_v2" "$out"
rm -f "$out/LOCK"   # a lock file is per machine, not part of the store
ls -l "$out"
