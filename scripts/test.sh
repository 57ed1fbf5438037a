#!/usr/bin/env bash
# Installs what is missing, builds, fetches the test assets, and runs every test (ctest).
# GPU tests (label `gpu`) run only where nvidia-smi sees a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
"$root/scripts/fetch-test-assets.sh"
"$root/scripts/build.sh"
cd "$build"
exclude=(-LE gpu)
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then exclude=(); fi
ctest --output-on-failure --timeout 900 -j "$(nproc)" "${exclude[@]}"
