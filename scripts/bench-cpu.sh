#!/usr/bin/env bash
# CPU backend tokens/s on this machine: the tiny preset and a ~125M-parameter Llama shape
# (hidden 768, 12 layers, 12 heads, 4 KV heads, MLP 2048, vocab 32000), both made by
# make-model (bf16 on disk, fp32 in memory). Prints prefill, decode batch 1 and decode
# batch 8 in tokens per wall second and per CPU second (the second is what the code does when
# the machine is shared).
# Usage: scripts/bench-cpu.sh [extra bench-cpu flags, e.g. --threads 1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
bin=$build/actorserve
models=${ACTORSERVE_TEST_CACHE:-$root/.cache}/bench-cpu
mkdir -p "$models"
[ -f "$models/tiny/config.json" ] || "$bin" make-model --preset tiny --seed 1 --out "$models/tiny" --quiet
[ -f "$models/llama-125m/config.json" ] ||
  "$bin" make-model --arch llama --hidden 768 --layers 12 --heads 12 --kv-heads 4 --intermediate 2048 \
    --vocab 32000 --seed 1 --out "$models/llama-125m" --quiet
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$bin" bench-cpu --model "$models/tiny" --prompt-len 128 --decode-tokens 64 --batch 8 "$@"
"$bin" bench-cpu --model "$models/llama-125m" --prompt-len 128 --decode-tokens 16 --batch 8 "$@"
