#!/usr/bin/env bash
# Serving over HTTP on the GPU machine (issue 6): process start to /ready, then `bench serve`
# 1024 in / 256 out at several concurrencies, against `actorserve serve --device cuda`.
#   scripts/gpu-serve-bench.sh ACTORSERVE_BINARY MODEL_DIR OUT_DIR
# Env: SERVE_TOKENIZER=DIR copies tokenizer.json + tokenizer_config.json into MODEL_DIR, replacing
# what is there (make-model's byte tokenizer covers 260 of the 128,256 ids an 8B-shaped random
# model emits: its streams would be nearly empty); SERVE_CONCURRENCY (default "1 16 64 256");
# SERVE_EXTRA_ARGS (more serve flags); SERVE_BENCH_ARGS (more bench serve flags; default
# --temperature 1: a random model's greedy choice can be a special token, whose text is empty). Writes OUT_DIR/serve_startup.json, serve_cN.json, logs.
set -uo pipefail
bin=$1 model=$2 out=$3
mkdir -p "$out"
if [ -n "${SERVE_TOKENIZER:-}" ]; then
  cp "$SERVE_TOKENIZER/tokenizer.json" "$SERVE_TOKENIZER/tokenizer_config.json" "$model/"
fi

port_file=$out/serve.port
rm -f "$port_file"
max_seqs=256
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$bin" serve --model "$model" --device cuda --port 0 --port-file "$port_file" --host 127.0.0.1 \
  --max-num-seqs "$max_seqs" --max-num-batched-tokens 8192 --disable-log-requests \
  ${SERVE_EXTRA_ARGS:-} > "$out/serve.log" 2>&1 &
pid=$!
ready=""
for _ in $(seq 1 1800); do  # up to 180 s
  if ! kill -0 "$pid" 2> /dev/null; then break; fi
  if [ -s "$port_file" ]; then
    port=$(cat "$port_file")
    if curl -fs -o /dev/null "http://127.0.0.1:$port/ready"; then ready=$(date +%s.%N); break; fi
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "serve did not become ready; last log lines:" >&2
  tail -n 20 "$out/serve.log" >&2
  kill "$pid" 2> /dev/null
  exit 1
fi
python3 - "$t0" "$ready" "$out/serve_startup.json" "$*" <<'PY'
import json, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
json.dump({"process_start_to_ready_s": round(t1 - t0, 3), "command": "scripts/gpu-serve-bench.sh " + sys.argv[4]},
          open(sys.argv[3], "w"), indent=1)
print(f"serve: process start -> /ready {t1 - t0:.2f} s")
PY

rc=0
for c in ${SERVE_CONCURRENCY:-1 16 64 256}; do
  n=$((c * 4)); [ "$n" -lt 16 ] && n=16; [ "$n" -gt 512 ] && n=512
  "$bin" bench serve --base-url "http://127.0.0.1:$port" --num-prompts "$n" --random-input-len 1024 \
    --random-output-len 256 --ignore-eos --max-concurrency "$c" --percentile-metrics ttft,tpot,itl,e2el \
    --metric-percentiles 50,99 ${SERVE_BENCH_ARGS:---temperature 1} --result-file "$out/serve_c$c.json" > "$out/serve_c$c.log" 2>&1 || rc=1
  tail -n 3 "$out/serve_c$c.log" >&2
done
kill -TERM "$pid" 2> /dev/null
wait "$pid"
exit $rc
