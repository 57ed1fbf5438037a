#!/bin/bash
# fp8 device run 2: the small fp8 GEMM's variants (ACTORSERVE_FP8_GEMM) under test and in decode.
set -u
K=$PWD/.gpurun-k
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64
for f in "$K"/*.gz; do gunzip -kf "$f"; done
chmod +x "$K/actorserve_gpu_bench" "$K/test_gpu"
M=/tmp/models/llama3-8b
L=$OUT/bench.log
(python3 scripts/bench_hf.py make-model --preset llama3-8b --out $M > $OUT/model.tmp 2>&1) &
MP=$!
for v in 1 2; do
  t0=$(date +%s)
  ACTORSERVE_FP8_GEMM=$v timeout 45 "$K/test_gpu" -r compact "[fp8]" > "$OUT/test_fp8_v$v.log" 2>&1
  echo "test [fp8] variant $v rc $? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/test_fp8_v$v.log)" >> $L
done
wait $MP; rm -f $OUT/model.tmp
for v in 0 1 2; do
  ACTORSERVE_FP8_GEMM=$v timeout 25 "$K/actorserve_gpu_bench" decode --model $M --contexts 128,4096 --steps 128 \
    --quantization fp8 --json $OUT/decode_fp8_v$v.json > $OUT/decode_v$v.log 2>&1
  echo "decode variant $v rc $?" >> $L
done
cat $L
python3 - "$OUT" <<'PY'
import json, os, sys
o = sys.argv[1]
for v in (0, 1, 2):
    try: d = json.load(open(os.path.join(o, f"decode_fp8_v{v}.json")))
    except Exception as e: print(v, e); continue
    print("variant", v, " ".join(f"ctx{r['context']} {'graph' if r['graphs'] else 'eager'} {r['median_ms_per_token']:.3f}" for r in d["runs"]))
    for p in d["profile"]:
        g = p["ms_per_step_by_group"]
        print("   ctx", p["context"], " ".join(f"{k} {g[k]:.3f}" for k in ("gemm_qkv", "gemm_o", "gemm_gate_up", "gemm_down")))
PY
