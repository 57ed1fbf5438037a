#!/usr/bin/env bash
# The Node.js packages of the Kubernetes manifest tests (tests/k8s: kubernetes-models and
# @kubernetes-models/{prometheus-operator,keda} for the API schemas, yaml to read kubectl's
# output), pinned in package.json and package-lock.json, installed with `npm ci` into
# tests/k8s/node_modules (gitignored). Idempotent: skipped while the installed tree was made
# from the current lock file.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/tests/k8s
cache=${ACTORSERVE_TEST_CACHE:-$root/.cache}
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
stamp=$dir/node_modules/.actorserve-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "assets: npm ci in tests/k8s"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --cache "$cache/npm")
echo "$want" >"$stamp"
