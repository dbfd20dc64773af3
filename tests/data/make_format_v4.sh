#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Regenerates tests/data/format-v4/, a small store in stowage's on-disk format
# version 4 (manifest format 4, chunk format 4), from the headers of the git
# tag `format-v4` (commit 9720157, the last commit that wrote manifest format
# 4), with the operations and generator of the format-2 fixture
# (make_format_v2.sh and make_format_v2.cpp). Run from anywhere inside the
# repository; needs git history, g++, Boost and LZ4 (scripts/deps.sh). What
# the store holds: tests/data/fixture_v2.hpp.
set -euo pipefail
FIXTURE_TAG=format-v4 FIXTURE_COMMIT=9720157 FIXTURE_DIR=format-v4 exec bash "$(dirname "$0")/make_format_v2.sh"
