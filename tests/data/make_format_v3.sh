#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Regenerates tests/data/format-v3/, a small store in stowage's on-disk format
# version 3 (manifest format 3, chunk format 3), from the headers of the git
# tag `format-v3` (commit 2bccf43, the last commit that wrote those formats),
# with the operations and generator of the format-2 fixture (make_format_v2.sh
# and make_format_v2.cpp). Run from anywhere inside the repository; needs git
# history, g++, Boost and LZ4 (scripts/deps.sh). What the store holds:
# tests/data/fixture_v2.hpp.
set -euo pipefail
FIXTURE_TAG=format-v3 FIXTURE_COMMIT=2bccf43 FIXTURE_DIR=format-v3 exec bash "$(dirname "$0")/make_format_v2.sh"
