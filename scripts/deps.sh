#!/usr/bin/env bash
# Installs the Debian packages stowage's build needs, only those missing.
# Usage: scripts/deps.sh [extra packages...]
set -euo pipefail
need=(g++ cmake make pkg-config libboost-dev libboost-serialization-dev liblz4-dev libxxhash-dev catch2 libssl-dev nlohmann-json3-dev libmsgpack-dev libcli11-dev "$@")
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "stowage: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
