#!/usr/bin/env bash
# Fills .gpurun/ (git-ignored) with what a GPU-machine run needs besides .deps, small enough for
# the 64 MiB carry: stripped binaries from a local CUDA build, the real tokenizer files
# (tokenizer.json gzipped); the benchmark texts are made there. Then, on the GPU machine:
#   run(carry [".deps", ".gpurun"]):  GPU_CHECK_PREBUILT=.gpurun/bin bash scripts/gpu-check.sh model serve tokenizers
#   scripts/gpu-prepare-carry.sh [BUILD_DIR]   (default build/; needs actorserve built with CUDA)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cache=${ACTORSERVE_TEST_CACHE:-$root/.cache}
dest=$root/.gpurun
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/tokenizers"
for b in actorserve tests/test_tokenizer; do
  [ -x "$build/$b" ] && strip -o "$dest/bin/$(basename "$b")" "$build/$b" && gzip -9 "$dest/bin/$(basename "$b")"
done  # gzipped: scripts/gpu-check.sh unpacks *.gz in GPU_CHECK_PREBUILT
for d in "$cache"/tokenizers/*/; do
  name=$(basename "$d")
  mkdir -p "$dest/tokenizers/$name"
  gzip -9 -c "$d/tokenizer.json" > "$dest/tokenizers/$name/tokenizer.json.gz"
  cp "$d"/tokenizer_config.json "$dest/tokenizers/$name/"
  [ -f "$d/chat_template.jinja" ] && cp "$d/chat_template.jinja" "$dest/tokenizers/$name/"
done
du -sh "$dest" "$root/.deps"
