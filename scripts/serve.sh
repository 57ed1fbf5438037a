#!/usr/bin/env bash
# Installs what is missing (scripts/install-deps.sh), builds (scripts/build.sh), and serves a
# model over the OpenAI API on port 8000: the bundled demo model, or `--model DIR`. Every
# argument goes to `actorserve serve` (see `build/actorserve serve --help`), e.g.
#   scripts/serve.sh --port 8080 --api-key secret
#   scripts/serve.sh --model /models/Llama-3.1-8B-Instruct --max-model-len 8192
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
ACTORSERVE_BUILD_DIR="$build" "$root/scripts/build.sh"
exec "$build/actorserve" serve "$@"
