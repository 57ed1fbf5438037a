#!/usr/bin/env python3
"""Reference logits and greedy continuations from Hugging Face transformers, for the CPU
backend's tests (tests/cpu/hf_reference_test.cpp).

For each model folder (made by `actorserve make-model`, see scripts/make-hf-fixtures.sh) it
loads the model with AutoModelForCausalLM in float32 with eager attention, on the CPU (no TF32,
no reduced-precision GEMMs), and writes OUT/<arch>.json with:
  - `make_model`: how the model was made (copied from MODEL/make_model.json), so that the test
    re-creates the same weights from the seed;
  - `tensor_sums`: the float64 sum of every tensor as torch reads it (a fingerprint: the test
    checks that the re-created model is the one the fixture was made from);
  - `inv_freq`: the rotary inverse frequencies of layer 0 (checks rope_theta/rope_scaling);
  - per prompt (token id lists; one longer than two 16-token blocks): the logits of the last
    prompt position (all of them, the vocabularies here are small) and the 32-token greedy
    continuation (argmax, first index on ties), with each step's top-2 margin so that a
    near-tie is visible.

Usage: python3 scripts/hf_reference.py --models DIR --out DIR [--archs llama,qwen2,...]
(scripts/make-hf-fixtures.sh says how the models are made and carried to the GPU machine.)
"""
import argparse
import json
import os
import sys
import time
import traceback

import torch
from transformers import AutoModelForCausalLM

GREEDY_TOKENS = 32


def prompts_for(vocab_size):
    # Fixed id lists inside every tiny vocabulary (>= 256): a short one, one of a single token,
    # and one of 40 tokens (2.5 blocks of 16).
    long = [(i * 37 + 11) % 250 + 3 for i in range(40)]
    return [
        {"name": "short", "ids": [1, 72, 101, 108, 108, 111]},
        {"name": "single", "ids": [42]},
        {"name": "long", "ids": long},
    ]


@torch.no_grad()
def reference_for(model_dir):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cfg = model.config
    out = {
        "model_type": cfg.model_type,
        "architecture": type(model).__name__,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "vocab_size": cfg.vocab_size,
        "tie_word_embeddings": bool(getattr(cfg, "tie_word_embeddings", False)),
        # How transformers understood rope_theta/rope_scaling (v5 calls them rope_parameters).
        "rope": repr(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None)),
    }
    make_model_json = os.path.join(model_dir, "make_model.json")
    if os.path.exists(make_model_json):
        out["make_model"] = json.load(open(make_model_json))
    out["tensor_sums"] = {name: float(t.double().sum()) for name, t in model.state_dict().items()
                          if "rotary_emb" not in name}
    rotary = model.model.rotary_emb
    out["inv_freq"] = [float(x) for x in rotary.inv_freq.float()]
    out["cases"] = []
    for prompt in prompts_for(cfg.vocab_size):
        ids = list(prompt["ids"])
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        generated, margins = [], []
        seq = list(ids)
        for _ in range(GREEDY_TOKENS):
            step_logits = model(torch.tensor([seq])).logits[0, -1].float()
            top2 = torch.topk(step_logits, 2).values
            tok = int(torch.argmax(step_logits))
            generated.append(tok)
            margins.append(float(top2[0] - top2[1]))
            seq.append(tok)
        out["cases"].append({
            "name": prompt["name"],
            "prompt_ids": ids,
            "last_logits": [float(x) for x in logits],
            "greedy_ids": generated,
            "greedy_top2_margins": margins,
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="folder with one model folder per arch")
    ap.add_argument("--out", required=True)
    ap.add_argument("--archs", default="llama,llama_linear,qwen2,qwen3,mistral",
                    help="model folder names under --models (fixture names)")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=DIR",
                    help="another model folder, e.g. demo=models/demo")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    models = [(name, os.path.join(args.models, name)) for name in args.archs.split(",")]
    models += [tuple(e.split("=", 1)) for e in args.extra]
    for arch, model_dir in models:
        t0 = time.time()
        try:
            ref = reference_for(model_dir)
        except Exception:  # one model failing must not cost the others' fixtures
            traceback.print_exc()
            failed += 1
            continue
        with open(os.path.join(args.out, arch + ".json"), "w") as f:
            json.dump(ref, f, indent=None, separators=(",", ":"))
            f.write("\n")
        min_margin = min(min(c["greedy_top2_margins"]) for c in ref["cases"])
        print(f"{arch}: {ref['architecture']}, {len(ref['cases'])} prompts, greedy {GREEDY_TOKENS} tokens, "
              f"smallest top-2 margin {min_margin:.2e}, rope {ref['rope']}, {time.time() - t0:.1f} s", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
