#!/usr/bin/env bash
# Serving figures on the GPU machine, as run for results/gpu/serve.json: starts `serve --device cuda`
# on a random 8B model, checks two raw SSE streams (text chunks, first text time), then runs
# bench serve 1024/256 at the concurrencies of the loop below (edit it: the budget allowed two per run).
# run(carry [".deps/usr/lib/x86_64-linux-gnu", ".gpurun"]) with .gpurun from scripts/gpu-prepare-carry.sh.
set -u
export OUT
GPU_CHECK_PACK=0 GPU_CHECK_PREBUILT=.gpurun/bin bash scripts/gpu-check.sh model > /dev/null 2>&1
M=/tmp/models/llama3-8b; B=.gpurun/bin/actorserve
export LD_LIBRARY_PATH=$PWD/.deps/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64
gunzip -c .gpurun/tokenizers/llama3/tokenizer.json.gz > $M/tokenizer.json; cp .gpurun/tokenizers/llama3/tokenizer_config.json $M/
$B serve --model $M --device cuda --port 8011 --host 127.0.0.1 --disable-log-requests --max-num-seqs 256 --max-num-batched-tokens 8192 > $OUT/serve.log 2>&1 &
for i in $(seq 1 300); do curl -fs localhost:8011/ready > /dev/null && break; sleep 0.2; done
P=$(python3 -c "import random; r=random.Random(1); print([r.randrange(0,128256) for _ in range(1024)])")
for body in "{\"prompt\":$P,\"max_tokens\":256,\"temperature\":1,\"stream\":true,\"ignore_eos\":true,\"stream_options\":{\"include_usage\":true}}" "{\"prompt\":$P,\"max_tokens\":256,\"temperature\":1,\"stream\":true}"; do
curl -s -N localhost:8011/v1/completions -H 'Content-Type: application/json' -d "$body" | python3 -c "
import sys,time,json
t0=time.time(); n=0; first=None; events=0; bad=0; last=''
for line in sys.stdin:
    if not line.startswith('data: '): continue
    events+=1; d=line[6:].strip(); last=d[:300]
    if d=='[DONE]': continue
    try: j=json.loads(d)
    except Exception as e: bad+=1; continue
    for c in j.get('choices',[]):
        if c.get('text'):
            n+=1; first=first or time.time()-t0
print('events',events,'text_chunks',n,'first_text_s',first,'unparsable',bad,'last',last)"
done
for c in 16 256; do n=$((c*4)); [ $n -gt 512 ] && n=512; $B bench serve --base-url http://127.0.0.1:8011 --num-prompts $n --random-input-len 1024 --random-output-len 256 --ignore-eos --max-concurrency $c --temperature 1 --percentile-metrics ttft,tpot,itl --metric-percentiles 50,99 --result-file $OUT/c$c.json 2>&1 | grep -E "Successful|Failed|Median TTFT|P99 TTFT|Median TPOT|P99 TPOT|Output token thr|error" | head -9; done
kill %1
