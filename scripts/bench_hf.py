#!/usr/bin/env python3
"""The Hugging Face transformers side of the CUDA backend's checks and benchmarks (GPU machine).

  make-model      --out DIR [--preset llama3-8b|tiny] [--seed 0]
                  a random model in the HF layout (config.json + sharded safetensors, bf16),
                  made on the GPU with a fixed seed (stand-in for `actorserve make-model`)
  compare         --model DIR --prompts FILE --ours FILE --ours-logits FILE [--steps 16] --json OUT
                  greedy tokens and first-step logits of transformers vs actorserve's dump
  generate        --model DIR --batch B --input-len I --output-len O --json OUT
                  transformers generate() (static batch), output tokens/s and ms/token
  generate-batch  --model DIR --num-prompts N --input-len I --output-len O --json OUT
                  transformers generate_batch() (continuous batching, paged|sdpa)

Every command prints one JSON object and writes it to --json.
"""
import argparse
import json
import os
import sys
import time

import torch

PRESETS = {
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=128, vocab_size=128256, max_position_embeddings=131072,
                      rope_theta=500000.0,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                        original_max_position_embeddings=8192)),
    "tiny": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=8,
                 num_key_value_heads=2, head_dim=32, vocab_size=1000, max_position_embeddings=4096,
                 rope_theta=10000.0, rope_scaling=None),
}


def emit(result, path):
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def make_model(a):
    from safetensors.torch import save_file
    p = PRESETS[a.preset]
    os.makedirs(a.out, exist_ok=True)
    config = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", rms_norm_eps=1e-5,
                  tie_word_embeddings=False, attention_bias=False, mlp_bias=False, torch_dtype="bfloat16",
                  bos_token_id=128000 if p["vocab_size"] > 128001 else 1,
                  eos_token_id=128001 if p["vocab_size"] > 128001 else 2, initializer_range=0.02, **p)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    h, i, v, d = p["hidden_size"], p["intermediate_size"], p["vocab_size"], p["head_dim"]
    q, kv = p["num_attention_heads"] * d, p["num_key_value_heads"] * d
    shapes = [("model.embed_tokens.weight", (v, h)), ("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]
    for l in range(p["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        shapes += [(pre + "input_layernorm.weight", (h,)), (pre + "post_attention_layernorm.weight", (h,)),
                   (pre + "self_attn.q_proj.weight", (q, h)), (pre + "self_attn.k_proj.weight", (kv, h)),
                   (pre + "self_attn.v_proj.weight", (kv, h)), (pre + "self_attn.o_proj.weight", (h, q)),
                   (pre + "mlp.gate_proj.weight", (i, h)), (pre + "mlp.up_proj.weight", (i, h)),
                   (pre + "mlp.down_proj.weight", (h, i))]
    gen = torch.Generator(device="cuda").manual_seed(a.seed)
    shard, shard_bytes, index, n = {}, 0, {}, 0
    files = []

    def flush():
        nonlocal shard, shard_bytes, n
        if not shard:
            return
        name = f"model-{n:05d}.safetensors"
        save_file(shard, os.path.join(a.out, name), metadata={"format": "pt"})
        for k in shard:
            index[k] = name
        files.append(name)
        shard, shard_bytes, n = {}, 0, n + 1

    start = time.time()
    for name, shape in shapes:
        if name.endswith("norm.weight"):
            t = torch.ones(shape, dtype=torch.bfloat16, device="cuda")
        else:
            t = (torch.randn(shape, generator=gen, device="cuda", dtype=torch.float32) * 0.02).to(torch.bfloat16)
        shard[name] = t.cpu()
        shard_bytes += t.numel() * 2
        if shard_bytes >= 4 << 30:
            flush()
    flush()
    # Rename to the HF convention model-0000k-of-0000n.safetensors.
    total = len(files)
    final = {}
    for k, f in enumerate(files):
        new = f"model-{k + 1:05d}-of-{total:05d}.safetensors"
        os.rename(os.path.join(a.out, f), os.path.join(a.out, new))
        final[f] = new
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": {k: final[v] for k, v in index.items()}}, f, indent=1)
    emit({"command": "make-model", "preset": a.preset, "out": a.out, "seconds": time.time() - start,
          "shards": total}, a.json)


def load(model_dir, attn=None, dtype=torch.bfloat16):
    from transformers import AutoModelForCausalLM
    kw = dict(dtype=dtype, device_map="cuda")
    if attn:
        kw["attn_implementation"] = attn
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    model.eval()
    return model, time.time() - t0


def greedy(model, ids, steps):
    """Greedy decoding with the KV cache, no EOS stop: the reference for actorserve's tokens."""
    from transformers import DynamicCache
    cache = DynamicCache()
    x = torch.tensor([ids], device="cuda")
    out, first_logits = [], None
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=x, past_key_values=cache, use_cache=True).logits[0, -1].float()
            if first_logits is None:
                first_logits = logits
            tok = int(torch.argmax(logits))
            out.append(tok)
            x = torch.tensor([[tok]], device="cuda")
    return out, first_logits


def agree(x, y):
    n = 0
    while n < min(len(x), len(y)) and x[n] == y[n]:
        n += 1
    return n


def rel_l2(got, ref):
    import numpy as np
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def compare(a):
    """actorserve (bf16, and fp32 when --ours-fp32 is given) against transformers in bf16 and in
    fp32 on the same weights: greedy prefixes and first-step logits. transformers' own bf16 vs
    fp32 difference is the noise floor that bf16 arithmetic sets on this model."""
    import numpy as np
    prompts = json.load(open(a.prompts))
    runs = {}
    for dtype in ("bf16", "fp32"):
        model, load_s = load(a.model, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
        runs[dtype] = [greedy(model, p, a.steps) for p in prompts]
        runs[dtype] = [(toks, first.cpu().numpy()) for toks, first in runs[dtype]]
        del model
        torch.cuda.empty_cache()
    vocab = runs["bf16"][0][1].shape[0]
    ours = {"bf16": (json.load(open(a.ours)), np.fromfile(a.ours_logits, dtype=np.float32).reshape(len(prompts), vocab))}
    if a.ours_fp32:
        ours["fp32"] = (json.load(open(a.ours_fp32)),
                        np.fromfile(a.ours_fp32_logits, dtype=np.float32).reshape(len(prompts), vocab))
    rows = []
    for k, prompt in enumerate(prompts):
        hf16, hf32 = runs["bf16"][k], runs["fp32"][k]
        row = dict(prompt_len=len(prompt),
                   hf_bf16_vs_hf_fp32=dict(identical_prefix=agree(hf16[0], hf32[0]), rel_l2=rel_l2(hf16[1], hf32[1])))
        top2 = np.sort(hf32[1])[-2:]
        row["fp32_top2_margin"] = float(top2[1] - top2[0])
        for name, (dump, logits) in ours.items():
            toks = dump["tokens"][k][: a.steps]
            row[f"ours_{name}_vs_hf_bf16"] = dict(identical_prefix=agree(toks, hf16[0]), rel_l2=rel_l2(logits[k], hf16[1]))
            row[f"ours_{name}_vs_hf_fp32"] = dict(identical_prefix=agree(toks, hf32[0]), rel_l2=rel_l2(logits[k], hf32[1]))
        rows.append(row)
    emit({"command": "compare", "steps": a.steps, "prompts": rows}, a.json)


def random_prompts(n, length, vocab, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, length), generator=g).tolist()


def generate(a):
    model, load_s = load(a.model)
    prompts = random_prompts(a.batch, a.input_len, model.config.vocab_size)
    x = torch.tensor(prompts, device="cuda")
    kw = dict(max_new_tokens=a.output_len, min_new_tokens=a.output_len, do_sample=False,
              attention_mask=torch.ones_like(x), pad_token_id=0)
    with torch.no_grad():
        model.generate(x[:, :16], max_new_tokens=4, do_sample=False, attention_mask=torch.ones_like(x[:, :16]),
                       pad_token_id=0)  # warm-up
        torch.cuda.synchronize()
        t0 = time.time()
        out = model.generate(x, **kw)
        torch.cuda.synchronize()
        dt = time.time() - t0
    new = (out.shape[1] - x.shape[1]) * out.shape[0]
    emit({"command": "generate", "batch": a.batch, "input_len": a.input_len, "output_len": a.output_len,
          "load_s": load_s, "elapsed_s": dt, "output_tokens": new, "output_tokens_per_s": new / dt,
          "ms_per_step": dt / (out.shape[1] - x.shape[1]) * 1e3}, a.json)


def generate_batch(a):
    from transformers import GenerationConfig
    model, load_s = load(a.model)
    model.set_attn_implementation("paged|sdpa")
    prompts = random_prompts(a.num_prompts, a.input_len, model.config.vocab_size)
    cfg = dict(max_new_tokens=a.output_len, do_sample=False, eos_token_id=-1, pad_token_id=0)
    cb = dict(num_blocks=a.num_blocks, block_size=a.block_size, max_batch_tokens=a.max_batch_tokens)
    with torch.no_grad():  # not inference_mode: its background thread updates tensors in place
        t0 = time.time()
        try:
            from transformers.generation import ContinuousBatchingConfig
            outs = model.generate_batch(inputs=prompts, generation_config=GenerationConfig(**cfg),
                                        continuous_batching_config=ContinuousBatchingConfig(**cb),
                                        progress_bar=False)
        except (ImportError, TypeError):
            outs = model.generate_batch(inputs=prompts, generation_config=GenerationConfig(**cfg, **cb),
                                        progress_bar=False)
        torch.cuda.synchronize()
        dt = time.time() - t0
    new = sum(len(o.generated_tokens) for o in outs.values())
    emit({"command": "generate-batch", "num_prompts": a.num_prompts, "input_len": a.input_len,
          "output_len": a.output_len, "num_blocks": a.num_blocks, "block_size": a.block_size, "load_s": load_s,
          "elapsed_s": dt, "output_tokens": new, "output_tokens_per_s": new / dt}, a.json)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-model")
    m.add_argument("--out", required=True)
    m.add_argument("--preset", default="llama3-8b", choices=sorted(PRESETS))
    m.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("--model", required=True)
    c.add_argument("--prompts", required=True)
    c.add_argument("--ours", required=True)
    c.add_argument("--ours-logits", required=True)
    c.add_argument("--ours-fp32", default="")
    c.add_argument("--ours-fp32-logits", default="")
    c.add_argument("--steps", type=int, default=16)
    g = sub.add_parser("generate")
    g.add_argument("--model", required=True)
    g.add_argument("--batch", type=int, default=1)
    g.add_argument("--input-len", type=int, default=128)
    g.add_argument("--output-len", type=int, default=128)
    b = sub.add_parser("generate-batch")
    b.add_argument("--model", required=True)
    b.add_argument("--num-prompts", type=int, default=256)
    b.add_argument("--input-len", type=int, default=128)
    b.add_argument("--output-len", type=int, default=128)
    b.add_argument("--num-blocks", type=int, default=4096)
    b.add_argument("--block-size", type=int, default=64)
    b.add_argument("--max-batch-tokens", type=int, default=4096)
    for p in (m, c, g, b):
        p.add_argument("--json", default="")
    a = ap.parse_args()
    {"make-model": make_model, "compare": compare, "generate": generate, "generate-batch": generate_batch}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
