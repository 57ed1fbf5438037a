#!/usr/bin/env bash
# Issue 3's checks that need the GPU machine's Python (transformers, tokenizers), one command:
#   scripts/gpu-tokenizer-check.sh BUILD_DIR OUT_DIR
# 1. Chat templates: scripts/chat_template_reference.py renders the test conversations with
#    Python's jinja2 the way transformers does (CI checks our interpreter against that); here the
#    same conversations go through transformers' apply_chat_template and the two are compared.
# 2. (GPU_TOK_BENCH=1, the default) Encode MB/s, one thread, same texts: Hugging Face `tokenizers` (Python) and actorserve's
#    tokenizer (BUILD_DIR/test_tokenizer "[.bench]"), on this machine's CPU.
# Inputs travel in .gpurun/ (made by scripts/gpu-prepare-carry.sh): tokenizers/<name>/
# {tokenizer.json.gz, tokenizer_config.json, chat_template.jinja}.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$1 out=$2
carry=$root/.gpurun
work=$(mktemp -d)
mkdir -p "$out" "$work/tokenizers"
for d in "$carry"/tokenizers/*/; do
  name=$(basename "$d")
  mkdir -p "$work/tokenizers/$name" "$work/tokfiles/$name"
  cp "$d"/* "$work/tokenizers/$name/"
  cp "$d/tokenizer.json.gz" "$work/tokfiles/$name/"
  gunzip -f "$work/tokenizers/$name/tokenizer.json.gz"
done
python3 "$root/scripts/bench_tokenizer_texts.py" "$work/bench-texts" > /dev/null
conv=$root/tests/fixtures/chat_template/conversations.json
ref=$root/scripts/chat_template_reference.py
rc=0
python3 "$ref" cases --conversations "$conv" "$work"/tokenizers/* --out "$out/templates_jinja2.json" || rc=1
python3 "$ref" transformers --conversations "$conv" "$work"/tokenizers/* --out "$out/templates_transformers.json" || rc=1
python3 "$ref" compare "$out/templates_jinja2.json" "$out/templates_transformers.json" > "$out/template_compare.txt" 2>&1
echo "compare exit $?" >> "$out/template_compare.txt"
python3 - "$out/templates_jinja2.json" >> "$out/template_compare.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(len(v) for v in d.values() if isinstance(v, list))
print(f"cases compared: {n} over {len(d)} templates ({', '.join(sorted(d))})")
PY

if [ "${GPU_TOK_BENCH:-1}" = 1 ]; then
  TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 python3 "$root/scripts/make_tokenizer_fixtures.py" \
    --tokfiles "$work/tokfiles" --bench-dir "$work/bench-texts" --out "$work/hf" > "$out/hf_tokenizers.log" 2>&1 || rc=1
  cp "$work/hf/bench.json" "$out/hf_tokenizers_bench.json" 2> /dev/null
fi
if [ "${GPU_TOK_BENCH:-1}" = 1 ] && [ -x "$build/test_tokenizer" ]; then
  ACTORSERVE_BENCH_TEXTS=$work/bench-texts ACTORSERVE_TEST_CACHE=$work "$build/test_tokenizer" "[.bench]" \
    > "$out/actorserve_tokenizer_bench.log" 2>&1 || rc=1
fi
python3 - "$out" <<'PY'
import json, os, re, sys
out = sys.argv[1]
rows = []
try:
    hf = json.load(open(os.path.join(out, "hf_tokenizers_bench.json")))
    for r in hf["runs"]:
        rows.append({"impl": "hf-tokenizers " + hf["tokenizers_version"], "tokenizer": r["tokenizer"], "text": r["text"],
                     "mb_s": round(r["whole_mb_s"], 2), "cpu": hf.get("cpu")})
except Exception as e:
    print("no HF bench:", e)
try:
    for line in open(os.path.join(out, "actorserve_tokenizer_bench.log")):
        if line.startswith("actorserve"):
            rows.append({"impl": "actorserve", "line": line.strip()})
except Exception as e:
    print("no actorserve bench:", e)
json.dump(rows, open(os.path.join(out, "tokenizer_bench.json"), "w"), indent=1)
PY
rm -rf "$work"
exit $rc
