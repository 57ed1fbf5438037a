#!/usr/bin/env bash
# The CUDA backend's checks and benchmarks in one command on the GPU machine:
#   bash scripts/gpu-check.sh [STAGE...]      (default: all stages, in this order)
# Stages: build test model compare decode throughput peers engine serve tokenizers
#   build       configure with the carried Debian packages (.deps), build actorserve_gpu_bench + test_gpu
#   test        test_gpu (kernel tests vs CPU references, tiny models vs the CPU backend)
#   model       a random Llama-3-8B-shaped bf16 model (actorserve make-model if present, else python)
#   compare     greedy tokens + logits vs transformers on the same weights
#   decode      single-stream ms/token at contexts 128 and 4096, step breakdown by kernel group
#   throughput  offline throughput 1000/1000 and 128/128 (512 prompts each)
#   peers       transformers generate() and generate_batch() on the same model
#   serve       `actorserve serve --device cuda` on the model: start -> /ready, bench serve 1024/256 at
#               concurrency 1/16/64/256 (scripts/gpu-serve-bench.sh; needs $BUILD/actorserve)
#   engine      the same offline workloads through the product path: `actorserve bench throughput --device cuda`
#               (engine actors + CUDA executor), next to actorserve_gpu_bench's plain loop
#   tokenizers  issue 3's one-off checks: chat templates vs transformers.apply_chat_template, and
#               encode MB/s of Hugging Face tokenizers next to ours on this CPU (scripts/gpu-tokenizer-check.sh)
# Building here needs .deps from `bash ../shared/device/deps.sh libbrotli-dev libbrotli1` (httplib.h
# includes brotli headers, which the GPU machine lacks); static libraries can be deleted from .deps.
# Logs and JSON go to $OUT (default /tmp/gpu-check); a summary table is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(build test model compare decode throughput peers)
BUILD=${GPU_CHECK_BUILD:-$ROOT/build-gpu-check}
MODEL=${GPU_CHECK_MODEL:-/tmp/models/llama3-8b}
PROMPTS_N=${GPU_CHECK_PROMPTS:-512}
export LD_LIBRARY_PATH=$ROOT/.deps/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
# GPU_CHECK_PREBUILT=DIR: use binaries built elsewhere (DIR/actorserve_gpu_bench, DIR/test_gpu,
# DIR/lib/*.so) instead of building here; saves the build's minutes while iterating.
if [ -n "${GPU_CHECK_PREBUILT:-}" ]; then
  BUILD=$ROOT/$GPU_CHECK_PREBUILT
  for f in "$BUILD"/*.gz; do [ -f "$f" ] && gunzip -f "$f" && chmod +x "${f%.gz}"; done
  export LD_LIBRARY_PATH=$BUILD/lib:$LD_LIBRARY_PATH
  STAGES=("${STAGES[@]/build}")
fi
BENCH=$BUILD/actorserve_gpu_bench
STATUS=$OUT/status.txt
: > "$STATUS"

has() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
# run NAME TIMEOUT CMD...: logs to $OUT/NAME.log, records pass/fail and seconds
run() {
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "=== $name: $*" >&2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc ${SECONDS}s-${t0}s=$((SECONDS - t0))s" >> "$STATUS"
  tail -n 5 "$OUT/$name.log" >&2
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1

# The real Llama-3 tokenizer for the 8B model when it was carried (scripts/gpu-prepare-carry.sh):
# make-model's own byte tokenizer has 260 tokens, so almost every id of the 128,256 rows would
# decode to no text and `bench serve` would see empty streams.
if [ -z "${SERVE_TOKENIZER:-}" ] && [ -f .gpurun/tokenizers/llama3/tokenizer.json.gz ]; then
  SERVE_TOKENIZER=/tmp/serve-tokenizer; mkdir -p $SERVE_TOKENIZER
  gunzip -c .gpurun/tokenizers/llama3/tokenizer.json.gz > $SERVE_TOKENIZER/tokenizer.json
  cp .gpurun/tokenizers/llama3/tokenizer_config.json $SERVE_TOKENIZER/
fi
if has model && [ ! -f "$MODEL/config.json" ]; then
  # In the background while the build runs: it needs only python and the GPU.
  (
    if [ -x "$BUILD/actorserve" ] && "$BUILD/actorserve" make-model --help > /dev/null 2>&1; then
      run model 600 "$BUILD/actorserve" make-model --preset llama3-8b --out "$MODEL" \
        ${SERVE_TOKENIZER:+--tokenizer "$SERVE_TOKENIZER"}
    else
      run model 600 python3 scripts/bench_hf.py make-model --preset llama3-8b --out "$MODEL" --json "$OUT/model.json"
    fi
  ) &
  MODEL_PID=$!
fi

if has build; then
  GEN=(); command -v ninja > /dev/null && GEN=(-G Ninja)
  run configure 300 cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DACTORSERVE_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$ROOT/.deps/usr" || true
  run build_bench 600 cmake --build "$BUILD" -j16 --target actorserve_gpu_bench || true
  run build_tests 600 cmake --build "$BUILD" -j16 --target test_gpu || true
  if has engine || has serve || has model; then
    run build_actorserve 600 cmake --build "$BUILD" -j16 --target actorserve || true
  fi
fi

# After the build stage: tests/test_gpu in a CMake build, test_gpu in a GPU_CHECK_PREBUILT folder.
TEST_BIN=$BUILD/tests/test_gpu
[ -x "$TEST_BIN" ] || TEST_BIN=$BUILD/test_gpu
if has test && [ -x "$TEST_BIN" ]; then
  run test_gpu 400 "$TEST_BIN" -r compact || true
fi

[ -n "${MODEL_PID:-}" ] && wait "$MODEL_PID"

if has compare && [ -x "$BENCH" ]; then
  python3 - "$OUT/prompts.json" <<'PY'
import json, random, sys
r = random.Random(5)
prompts = [[128000] + [r.randrange(1000, 128000) for _ in range(n)] for n in (7, 32, 100, 511)]
json.dump(prompts, open(sys.argv[1], "w"))
PY
  run dump 300 "$BENCH" dump --model "$MODEL" --prompts "$OUT/prompts.json" --steps 16 \
    --logits "$OUT/ours_logits.f32" --json "$OUT/ours.json" &&
  run dump_fp32 300 "$BENCH" dump --model "$MODEL" --dtype float32 --prompts "$OUT/prompts.json" --steps 16 \
    --logits "$OUT/ours_fp32_logits.f32" --json "$OUT/ours_fp32.json" &&
  run compare 300 python3 scripts/bench_hf.py compare --model "$MODEL" --prompts "$OUT/prompts.json" \
    --ours "$OUT/ours.json" --ours-logits "$OUT/ours_logits.f32" --ours-fp32 "$OUT/ours_fp32.json" \
    --ours-fp32-logits "$OUT/ours_fp32_logits.f32" --steps 16 --json "$OUT/compare.json" || true
fi

if has decode && [ -x "$BENCH" ]; then
  run decode 300 "$BENCH" decode --model "$MODEL" --contexts 128,4096 --steps 128 --json "$OUT/decode.json" || true
fi

if has throughput && [ -x "$BENCH" ]; then
  run throughput_128 300 "$BENCH" throughput --model "$MODEL" --num-prompts "$PROMPTS_N" --input-len 128 \
    --output-len 128 --max-num-seqs 512 --max-num-batched-tokens 8192 --json "$OUT/throughput_128.json" || true
  run throughput_1000 480 "$BENCH" throughput --model "$MODEL" --num-prompts "$PROMPTS_N" --input-len 1000 \
    --output-len 1000 --max-num-seqs 512 --max-num-batched-tokens 8192 --json "$OUT/throughput_1000.json" || true
fi

if has peers; then
  run hf_generate_1 300 python3 scripts/bench_hf.py generate --model "$MODEL" --batch 1 --input-len 128 \
    --output-len 128 --json "$OUT/hf_generate_1.json" || true
  run hf_generate_64 300 python3 scripts/bench_hf.py generate --model "$MODEL" --batch 64 --input-len 128 \
    --output-len 128 --json "$OUT/hf_generate_64.json" || true
  run hf_batch_128 300 python3 scripts/bench_hf.py generate-batch --model "$MODEL" --num-prompts 256 \
    --input-len 128 --output-len 128 --json "$OUT/hf_batch_128.json" || true
  run hf_batch_1000 300 python3 scripts/bench_hf.py generate-batch --model "$MODEL" --num-prompts 64 \
    --input-len 1000 --output-len 256 --json "$OUT/hf_batch_1000.json" || true
fi

if has engine && [ -x "$BUILD/actorserve" ]; then
  run engine_128 300 "$BUILD/actorserve" bench throughput --model "$MODEL" --device cuda --num-prompts "$PROMPTS_N" \
    --random-input-len 128 --random-output-len 128 --ignore-eos --max-num-seqs 512 --max-num-batched-tokens 8192 \
    --result-file "$OUT/engine_128.json" || true
  run engine_1000 480 "$BUILD/actorserve" bench throughput --model "$MODEL" --device cuda --num-prompts "$PROMPTS_N" \
    --random-input-len 1000 --random-output-len 1000 --ignore-eos --max-num-seqs 512 --max-num-batched-tokens 8192 \
    --result-file "$OUT/engine_1000.json" || true
fi

if has tokenizers; then
  run tokenizers 300 bash scripts/gpu-tokenizer-check.sh "$BUILD" "$OUT" || true
fi

if has serve && [ -x "$BUILD/actorserve" ]; then
  SERVE_TOKENIZER=${SERVE_TOKENIZER:-} \
    run serve 540 bash scripts/gpu-serve-bench.sh "$BUILD/actorserve" "$MODEL" "$OUT" || true
fi

# ---- summary table (last, so it is what the caller sees) ----
python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return None
print("\n==== gpu-check summary ====")
print(open(os.path.join(out, "gpu.txt")).read().strip().splitlines()[-1] if os.path.exists(os.path.join(out, "gpu.txt")) else "gpu: ?")
for line in open(os.path.join(out, "status.txt")):
    print("stage", line.strip())
log = os.path.join(out, "test_gpu.log")
if os.path.exists(log):
    lines = [l.strip() for l in open(log) if l.strip()]
    print("test_gpu:", lines[-1] if lines else "no output")
    for l in lines:
        if "FAILED" in l or "failed" in l.lower() and "test cases" not in l:
            print("  ", l[:160])
c = load("compare.json")
if c:
    for r in c["prompts"]:
        parts = [f"hf bf16~fp32 {r['hf_bf16_vs_hf_fp32']['identical_prefix']}/{c['steps']} ({r['hf_bf16_vs_hf_fp32']['rel_l2']:.4f})"]
        for key in ("ours_bf16_vs_hf_bf16", "ours_bf16_vs_hf_fp32", "ours_fp32_vs_hf_fp32"):
            if key in r:
                parts.append(f"{key[5:]} {r[key]['identical_prefix']}/{c['steps']} ({r[key]['rel_l2']:.4f})")
        print(f"greedy prefix (first-logits rel_l2), prompt {r['prompt_len']:4d}: " + ", ".join(parts))
floor_ms = 16.06e9 / 4.3e12 * 1e3
d = load("decode.json")
if d:
    s = d["startup"]
    print(f"startup: weights {s['weights_s']:.2f} s, graphs {s['graph_capture_s']:.2f} s ({s['num_graphs']}), total {s['total_s']:.2f} s, KV blocks {s['kv_blocks']}")
    for r in d["runs"]:
        print(f"decode ctx {r['context']:5d} graphs={int(r['graphs'])}: median {r['median_ms_per_token']:.3f} ms/token "
              f"({r['median_ms_per_token'] / floor_ms:.2f}x the {floor_ms:.2f} ms floor)")
    for p in d.get("profile", []):
        g = p["ms_per_step_by_group"]
        top = ", ".join(f"{k} {v:.3f}" for k, v in sorted(g.items(), key=lambda kv: -kv[1]))
        print(f"profile ctx {p['context']}: gpu {p['gpu_ms_per_step']:.3f} ms/step, wall {p['wall_ms_per_step_eager_profiled']:.3f}: {top}")
for name in ("throughput_128", "throughput_1000"):
    t = load(name + ".json")
    if t:
        print(f"throughput {t['num_prompts']} x {t['input_len']}/{t['output_len']}: {t['output_tokens_per_s']:.0f} output tok/s, "
              f"{t['total_tokens_per_s']:.0f} total tok/s, {t['elapsed_s']:.1f} s, {t['steps']} steps, "
              f"{t.get('mean_step_ms', 0):.2f} ms/step, {t.get('preemptions', 0)} preemptions")
for name in ("engine_128", "engine_1000"):
    t = load(name + ".json")
    if t:
        print(f"engine (bench throughput) {t['num_requests']} x {name[7:]}: {t['output_tokens_per_second']:.0f} output tok/s, "
              f"{t['tokens_per_second']:.0f} total tok/s, {t['elapsed_time']:.1f} s, {t['failed_requests']} failed")
s = load("serve_startup.json")
if s:
    print(f"serve: process start -> /ready {s['process_start_to_ready_s']:.2f} s")
for c in (1, 16, 64, 256):
    r = load(f"serve_c{c}.json")
    if r:
        print(f"serve 1024/256 conc {c:3d}: {r['completed']} ok {r['failed']} failed, {r['output_throughput']:.0f} out tok/s, "
              f"TTFT p50/p99 {r['median_ttft_ms']:.0f}/{r['p99_ttft_ms']:.0f} ms, TPOT p50/p99 {r['median_tpot_ms']:.2f}/{r['p99_tpot_ms']:.2f} ms")
t = load("tokenizer_bench.json")
if t:
    for row in t:
        print("tokenizer", row)
for line in (open(os.path.join(out, "template_compare.txt")).read().splitlines()[-3:] if os.path.exists(os.path.join(out, "template_compare.txt")) else []):
    print("templates vs transformers:", line)
for name in ("hf_generate_1", "hf_generate_64", "hf_batch_128", "hf_batch_1000"):
    h = load(name + ".json")
    if h:
        extra = f", {h['ms_per_step']:.1f} ms/step" if "ms_per_step" in h else ""
        print(f"transformers {name}: {h['output_tokens_per_s']:.0f} output tok/s{extra}")
PY

# Only a few files come back from the GPU machine: pack everything into one archive, keep the
# summary next to it (GPU_CHECK_PACK=0 leaves $OUT as it is).
if [ "${GPU_CHECK_PACK:-1}" = 1 ]; then
  (cd "$OUT" && tar czf /tmp/gpu-check-all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/gpu-check-all.tgz all.tgz)
fi
