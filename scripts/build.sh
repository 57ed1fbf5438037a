#!/usr/bin/env bash
# Configures and builds actorserve into build/ (Release, Ninja, ccache when present).
# Extra arguments go to cmake's configure step, e.g. -DACTORSERVE_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
jobs=${ACTORSERVE_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$jobs"
