#!/usr/bin/env bash
# The Node.js packages of the end-to-end tests (tests/e2e: the official `openai` client, pinned
# in package.json and package-lock.json), installed with `npm ci` into tests/e2e/node_modules
# (gitignored). Idempotent: skipped when the installed version matches the lock file.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
e2e=$root/tests/e2e
want=$(node -p "require('$e2e/package-lock.json').packages['node_modules/openai'].version")
have=$(node -p "try { require('$e2e/node_modules/openai/package.json').version } catch (e) { '' }")
if [ "$want" = "$have" ]; then
  exit 0
fi
echo "assets: npm ci in tests/e2e (openai@$want)"
(cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
