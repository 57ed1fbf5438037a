#!/usr/bin/env bash
# Encode throughput of actorserve's tokenizer next to Hugging Face `tokenizers` 0.23.2 (its npm
# build of the same Rust core), one thread each, on the same machine and the same texts:
# a 2 MB English text and a 1 MB Chinese/Japanese/Korean text (scripts/bench_tokenizer_texts.py).
# Needs the build's test_tokenizer and the fetched tokenizer files (scripts/fetch-test-assets.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
cache=${ACTORSERVE_TEST_CACHE:-$root/.cache}
texts=$cache/bench-texts
hf=$cache/hf-tokenizers-node

python3 "$root/scripts/bench_tokenizer_texts.py" "$texts" >/dev/null
if [ ! -f "$hf/package/index.js" ]; then
  mkdir -p "$hf"
  (cd "$hf" && npm pack --silent tokenizers@0.23.2 >/dev/null && tar -xzf tokenizers-0.23.2.tgz && rm tokenizers-0.23.2.tgz)
fi

echo "== Hugging Face tokenizers 0.23.2 (npm, one thread)"
TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 node "$root/scripts/make_tokenizer_fixtures.mjs" \
  --pkg "$hf/package" --bench "$texts"
echo "== actorserve (one thread)"
ACTORSERVE_BENCH_TEXTS=$texts "$build/tests/test_tokenizer" "[.bench]" | grep '^actorserve'
