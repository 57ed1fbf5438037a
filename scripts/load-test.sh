#!/usr/bin/env bash
# Load test (a benchmark script, not a timed test): CLIENTS concurrent streaming clients
# (default 500) against `actorserve serve` on the CPU backend with a tiny random-weight model.
# Checks that every request completes with the right token count or gets a clean error (none
# lost), and reports the server's memory (RSS) and thread count: idle after a warm-up burst
# (the baseline), right after each measured burst, and once idle threads have left.
#
#   scripts/load-test.sh                      # after scripts/build.sh
#   CLIENTS=200 OUTPUT_LEN=32 scripts/load-test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe=${ACTORSERVE_EXE:-${ACTORSERVE_BUILD_DIR:-$root/build}/actorserve}
clients=${CLIENTS:-500}
input_len=${INPUT_LEN:-32}
output_len=${OUTPUT_LEN:-64}
rounds=${ROUNDS:-2}
[ -x "$exe" ] || { echo "load-test: $exe not found; run scripts/build.sh first" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$exe" make-model --out "$work/tiny" --preset tiny --tokenizer "$root/models/demo" --quiet 2>/dev/null
# KV room for every client at once (prompt + output, rounded up to blocks), so the test measures
# the HTTP layer and the scheduler, not preemption.
kv_tokens=$(( clients * ((input_len + output_len) / 16 + 2) * 16 ))
"$exe" serve --model "$work/tiny" --host 127.0.0.1 --port 0 --port-file "$work/port" \
  --kv-cache-tokens "$kv_tokens" --max-num-seqs 256 --max-waiting-requests "$clients" \
  --disable-log-requests >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
threads() { ls "/proc/$server_pid/task" | wc -l; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
report() { printf '%-34s RSS %7s MiB, %5d threads\n' "$1" "$(mib "$(rss_kb)")" "$(threads)"; }

idle_wait() { # connection threads above the pool minimum leave after 10 s idle
  echo "waiting 12 s for idle connection threads to leave..."
  sleep 12
}
report "started (idle):"
# A warm-up burst first: it touches the preallocated KV cache pages and the allocator's arenas,
# which then stay resident; the baseline is the idle server after it. Later bursts must bring
# the server back to that baseline (no growth per burst: nothing leaks per request).
"$exe" bench serve --base-url "http://127.0.0.1:$port" --num-prompts "$clients" --max-concurrency "$clients" \
  --random-input-len "$input_len" --random-output-len "$output_len" --ignore-eos --seed 0 >/dev/null
report "right after the warm-up burst:"
idle_wait
report "baseline (idle after warm-up):"
baseline=$(rss_kb)
status=0
for round in $(seq 1 "$rounds"); do
  echo "== round $round: $clients concurrent streams, input $input_len, output $output_len tokens"
  "$exe" bench serve --base-url "http://127.0.0.1:$port" --num-prompts "$clients" --max-concurrency "$clients" \
    --random-input-len "$input_len" --random-output-len "$output_len" --ignore-eos --seed "$round" \
    --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,99 --result-file "$work/round$round.json" \
    | sed -n '/Serving Benchmark Result/,$p'
  report "right after round $round:"
  python3 - "$work/round$round.json" "$clients" "$output_len" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1])); clients = int(sys.argv[2]); out = int(sys.argv[3])
errors = [e for e in r["errors"] if e]
lost = clients - r["completed"] - len(errors)
wrong = sum(1 for e, n in zip(r["errors"], r["output_lens"]) if not e and n != out)
print(f"completed {r['completed']}, clean errors {len(errors)}, lost {lost}, wrong token counts {wrong}")
for e in sorted(set(errors))[:5]: print("  error:", e)
sys.exit(1 if lost or wrong or r["completed"] == 0 else 0)
PY
done
idle_wait
report "idle after the load:"
after=$(rss_kb)
echo "RSS growth over the baseline: $(mib $((after - baseline))) MiB"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^actorserve:(num_requests_running|num_requests_waiting|kv_cache_usage_perc|request_success_total|num_preemptions_total)' || true
kill -TERM "$server_pid"
wait "$server_pid" && echo "server exited 0 after SIGTERM" || { echo "server exit status $?"; status=1; }
server_pid=""
exit $status
