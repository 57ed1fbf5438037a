#!/usr/bin/env bash
# Runs scripts/train-demo-model.py on the GPU machine. Here, first:
#   scripts/train-demo-model.sh prepare     # fetches the fortunes packages into .demo-data/
# then, on the GPU machine (device run with carry [".demo-data"]):
#   bash scripts/train-demo-model.sh train   # writes the model into $OUT/demo (or ./models/demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  prepare)
    data=$root/.demo-data
    grep -qx '/.demo-data/' "$root/.git/info/exclude" 2>/dev/null || echo '/.demo-data/' >>"$root/.git/info/exclude"
    rm -rf "$data"; mkdir -p "$data/debs"
    (cd "$data/debs" && apt-get download fortunes fortunes-min >/dev/null 2>&1)
    for f in "$data"/debs/*.deb; do dpkg -x "$f" "$data/x"; done
    mv "$data/x/usr/share/games/fortunes" "$data/fortunes"
    rm -rf "$data/x" "$data/debs"
    ls "$data/fortunes" | wc -l | sed 's/^/fortune files: /'
    ;;
  train)
    out=${OUT:-$root/models}/demo
    PYTHONUNBUFFERED=1 python3 "$root/scripts/train-demo-model.py" --fortunes "$root/.demo-data/fortunes" \
      --out "$out" "${@:2}"
    ;;
  *) echo "usage: $0 prepare|train [--steps N]" >&2; exit 2 ;;
esac
