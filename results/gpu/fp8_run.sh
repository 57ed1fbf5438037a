#!/bin/bash
# fp8 device run: test_gpu, then decode and offline throughput with and without --quantization fp8.
set -u
K=$PWD/.gpurun-k
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64
for f in "$K"/*.gz; do gunzip -kf "$f"; done
chmod +x "$K/actorserve_gpu_bench" "$K/test_gpu"
M=/tmp/models/llama3-8b
L=$OUT/bench.log
(python3 scripts/bench_hf.py make-model --preset llama3-8b --out $M > $OUT/model.tmp 2>&1) &
MP=$!
t0=$(date +%s)
timeout 150 "$K/test_gpu" -r compact > "$OUT/test_gpu.log" 2>&1; echo "test_gpu rc $? in $(( $(date +%s) - t0 )) s" >> $L
wait $MP; tail -2 $OUT/model.tmp >> $L; rm -f $OUT/model.tmp
B="$K/actorserve_gpu_bench"
for q in none fp8; do
  t0=$(date +%s)
  timeout 90 $B decode --model $M --contexts 128,4096 --steps 128 --quantization $q --json $OUT/decode_$q.json >> $L 2>&1
  echo "decode $q rc $? $(( $(date +%s) - t0 )) s" >> $L
done
for q in none fp8; do
  t0=$(date +%s)
  timeout 60 $B throughput --model $M --num-prompts 512 --input-len 128 --output-len 128 --max-num-seqs 512 \
    --max-num-batched-tokens 8192 --quantization $q --json $OUT/tp128_$q.json >> $L 2>&1
  echo "tp128 $q rc $? $(( $(date +%s) - t0 )) s" >> $L
done
for q in fp8 none; do
  t0=$(date +%s)
  timeout 100 $B throughput --model $M --num-prompts 512 --input-len 1000 --output-len 1000 --max-num-seqs 512 \
    --max-num-batched-tokens 8192 --quantization $q --json $OUT/tp1000_$q.json >> $L 2>&1
  echo "tp1000 $q rc $? $(( $(date +%s) - t0 )) s" >> $L
done
grep -E "rc |weights|KV cache" $L | tail -30
grep -E "test cases|FAILED|failed" $OUT/test_gpu.log | tail -8
python3 - "$OUT" <<'PY'
import json, os, sys
o = sys.argv[1]
def load(n):
    try: return json.load(open(os.path.join(o, n)))
    except Exception as e: return None
for q in ("none", "fp8"):
    d = load(f"decode_{q}.json")
    if d:
        r = {k: v for k, v in d.items() if k not in ("profile",)}
        print("decode", q, json.dumps(r)[:900])
        for p in d.get("profile", []):
            print("  prof", p.get("context"), {k: round(v, 3) for k, v in p.get("ms_per_step_by_group", {}).items()})
    for t in ("tp128", "tp1000"):
        d = load(f"{t}_{q}.json")
        if d:
            print(t, q, "out tok/s %.0f" % d.get("output_tokens_per_s", 0), "elapsed %.1f" % d.get("elapsed_s", 0),
                  "decode step ms %.2f" % d.get("mean_decode_step_ms", 0), "prefill s %.1f" % d.get("prefill_steps_s", 0),
                  "preempt", d.get("preemptions"), "kv_blocks", d.get("startup", {}).get("kv_blocks"),
                  "wbytes", d.get("startup", {}).get("weight_bytes"))
PY
