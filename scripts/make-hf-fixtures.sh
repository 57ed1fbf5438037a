#!/usr/bin/env bash
# Makes the Hugging Face reference fixtures of the CPU backend (tests/fixtures/hf/*.json).
#
# The tiny test models are defined once, in tests/cpu/test_models.cpp; the tests re-create them
# from their seeds, so only the fixtures are committed. Two steps:
#
#   scripts/make-hf-fixtures.sh models
#       here: writes the models into .hfmodels/ (ignored: add /.hfmodels/ to .git/info/exclude)
#       with the test binary (build it first: cmake --build BUILD --target test_cpu).
#   scripts/make-hf-fixtures.sh reference OUT
#       on the GPU machine (python3 with torch + transformers; the run tool with carry
#       [".hfmodels"]): runs scripts/hf_reference.py, writes OUT/<name>.json. Copy them into
#       tests/fixtures/hf/ here. The trained demo model (models/demo) gets a fixture too.
#
# The reference runs transformers on the CPU in float32 with eager attention; no GPU needed,
# only a Python with torch and transformers (none here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ACTORSERVE_BUILD_DIR:-$root/build}
case "${1:-}" in
  models)
    rm -rf "$root/.hfmodels"
    ACTORSERVE_HF_MODELS_DIR="$root/.hfmodels" "$build/tests/test_cpu" "[.write-hf-models]" >/dev/null
    ls "$root/.hfmodels"
    ;;
  reference)
    out=${2:?usage: $0 reference OUT}
    python3 "$root/scripts/hf_reference.py" --models "$root/.hfmodels" --out "$out" --extra "demo=$root/models/demo"
    ;;
  *)
    echo "usage: $0 models | reference OUT" >&2
    exit 2
    ;;
esac
