#!/usr/bin/env bash
# Runs the local StatefulSet test inside a pod-like sandbox made with unshare: its own network
# namespace (only loopback: ports as the manifest declares them, no traffic leaves), its own
# hostname (the pod's name), and its own mount namespace (volumes as bind mounts, the root
# file system read-only as readOnlyRootFilesystem makes it). As root it needs nothing more;
# otherwise it asks for a user namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v unshare >/dev/null; then
  echo "statefulset_local: unshare (util-linux) is required" >&2
  exit 1
fi
userns=()
if [ "$(id -u)" -ne 0 ]; then userns=(--user --map-root-user); fi
# The pod's volumes live here; made and removed outside the sandbox, whose root is read-only.
root=$(mktemp -d "${TMPDIR:-/tmp}/actorserve-pod-XXXXXX")
trap 'rm -rf "$root"' EXIT
unshare "${userns[@]}" --net --uts --mount --fork \
  env ACTORSERVE_POD_SANDBOX=1 ACTORSERVE_POD_ROOT="$root" node --test "$here/statefulset_local.test.mjs"
