#!/usr/bin/env python3
"""Trains actorserve's bundled demo model (models/demo/) in one GPU run of a few minutes.

Data: the English fortune-cookie files that Debian ships in the `fortunes` and `fortunes-min`
packages (/usr/share/games/fortunes, fortune-mod 1.99.1). Why these: they are short,
self-contained modern English texts (quotations, jokes, aphorisms, small poems), ~2.5 MB in
all, small enough to travel with the run and to learn from in minutes, and Debian
redistributes them under the BSD-style terms in the packages' copyright files. The
non-English file `translate-me` and the `ascii-art` file are left out. The offensive
collection (package fortunes-off) is not used.

Pipeline (fixed seed everywhere):
  1. split the fortunes into documents; 5% of them (chosen by the seed) are held out;
  2. train a byte-level BPE tokenizer (vocabulary 4,096, special tokens for a small chat
     format) with Hugging Face `tokenizers` on the training documents;
  3. train a Llama-architecture model (6 layers, hidden 384, 6 heads, 2 KV heads, MLP 1,024,
     tied embeddings) with `transformers`' LlamaForCausalLM for a fixed number of steps on
     random 256-token windows of the packed training documents; part of the documents are
     wrapped in the chat format ("<|user|> ask for a fortune <|end|> <|assistant|> fortune");
  4. report the held-out loss (mean next-token cross-entropy, nats) and keep the checkpoint
     with the best held-out loss;
  5. write the Hugging Face layout: config.json, model.safetensors (bf16),
     generation_config.json, tokenizer.json, tokenizer_config.json (with the chat template);
  6. write the greedy continuations (64 tokens) of 10 prompts by transformers in float32 on
     the saved bf16 weights: tests/fixtures/demo/hf_greedy.json is made from this.

Usage (on the GPU machine, see scripts/train-demo-model.sh):
  python3 scripts/train-demo-model.py --fortunes DIR --out OUTDIR [--steps N]
"""
import argparse
import json
import math
import os
import random
import re
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] | trim + '<|end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
USER_ASKS = [
    "Tell me a fortune.", "Say something wise.", "Give me a quote.", "Tell me a joke.",
    "What do you know?", "Share a thought.", "Cheer me up.", "Teach me something.",
    "Any advice for today?", "Say something funny.",
]
EVAL_PROMPTS = [
    "The meaning of life is", "A wise man once said", "Computers are", "Love is",
    "Never trust a", "The best way to learn", "In the beginning", "Science is",
    "He who laughs", "Today you will",
]
SKIP_FILES = {"ascii-art", "translate-me"}


def read_fortunes(folder):
    docs = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name in SKIP_FILES or "." in name or not os.path.isfile(path):
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        for doc in re.split(r"\n%\n", text):
            doc = doc.strip("\n")
            if 10 <= len(doc) <= 4000:
                docs.append(doc)
    return docs


def train_tokenizer(train_docs, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(train_docs, trainer)
    bos = tok.token_to_id("<|bos|>")
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B",
                                                       special_tokens=[("<|bos|>", bos)])
    return tok


def encode_docs(tok, docs, rng, chat_fraction):
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    out = []
    for doc in docs:
        if rng.random() < chat_fraction:
            text = "<|user|>\n" + rng.choice(USER_ASKS) + "<|end|>\n<|assistant|>\n" + doc.strip() + "<|end|>\n"
            out.extend([ids["<|bos|>"]] + tok.encode(text, add_special_tokens=False).ids + [ids["<|eos|>"]])
        else:
            out.extend(tok.encode(doc).ids + [ids["<|eos|>"]])
    return torch.tensor(out, dtype=torch.long)


def batches(stream, batch, seq, gen):
    starts = torch.randint(0, stream.numel() - seq - 1, (batch,), generator=gen)
    x = torch.stack([stream[s:s + seq] for s in starts.tolist()])
    y = torch.stack([stream[s + 1:s + seq + 1] for s in starts.tolist()])
    return x, y


@torch.no_grad()
def held_out_loss(model, stream, seq, device):
    model.eval()
    total, count = 0.0, 0
    for s in range(0, stream.numel() - seq - 1, seq):
        x = stream[s:s + seq].unsqueeze(0).to(device)
        y = stream[s + 1:s + seq + 1].unsqueeze(0).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits.float()
        total += torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


@torch.no_grad()
def greedy(model, ids, n, device):
    seq = list(ids)
    for _ in range(n):
        logits = model(input_ids=torch.tensor([seq], device=device)).logits[0, -1].float()
        seq.append(int(torch.argmax(logits).item()))
    return seq[len(ids):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fortunes", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    t0 = time.time()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda"

    docs = read_fortunes(args.fortunes)
    rng = random.Random(args.seed)
    order = list(range(len(docs)))
    rng.shuffle(order)
    n_held = max(1, len(docs) // 20)
    held = [docs[i] for i in order[:n_held]]
    train = [docs[i] for i in order[n_held:]]
    print(f"documents: {len(train)} train, {len(held)} held out, {sum(map(len, docs))} chars", flush=True)

    tok = train_tokenizer(train, args.vocab)
    train_stream = encode_docs(tok, train, random.Random(args.seed + 1), chat_fraction=0.25)
    held_stream = encode_docs(tok, held, random.Random(args.seed + 2), chat_fraction=0.0)
    print(f"tokens: {train_stream.numel()} train, {held_stream.numel()} held out", flush=True)

    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=384, intermediate_size=1024,
                      num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2, head_dim=64,
                      max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=True, bos_token_id=ids["<|bos|>"],
                      eos_token_id=[ids["<|eos|>"], ids["<|end|>"]], pad_token_id=ids["<|pad|>"],
                      hidden_act="silu", attention_bias=False, mlp_bias=False)
    model = LlamaForCausalLM(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warmup, seq, batch = 100, 256, 64
    gen = torch.Generator().manual_seed(args.seed)
    best = (float("inf"), None, -1)
    history = []
    for step in range(1, args.steps + 1):
        lr = 1e-3 * min(1.0, step / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches(train_stream, batch, seq, gen)
        x, y = x.to(device), y.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == args.steps:
            hl = held_out_loss(model, held_stream, seq, device)
            history.append({"step": step, "train_loss": round(loss.item(), 4), "held_out_loss": round(hl, 4)})
            print(f"step {step}: train {loss.item():.3f} held-out {hl:.3f} ({time.time() - t0:.0f}s)", flush=True)
            if hl < best[0]:
                best = (hl, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    print(f"best held-out loss {best[0]:.4f} at step {best[2]}", flush=True)

    out = args.out
    os.makedirs(out, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    json.dump({"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>",
               "add_bos_token": True, "model_max_length": 1024, "chat_template": CHAT_TEMPLATE,
               "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False},
              open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)
    json.dump({"bos_token_id": ids["<|bos|>"], "eos_token_id": [ids["<|eos|>"], ids["<|end|>"]],
               "pad_token_id": ids["<|pad|>"], "do_sample": True, "temperature": 0.8, "top_p": 0.95},
              open(os.path.join(out, "generation_config.json"), "w"), indent=2)

    # Fixtures: transformers, float32 arithmetic on the saved bf16 weights, plain greedy argmax.
    ref = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").to(device).eval()
    fixtures = []
    for prompt in EVAL_PROMPTS:
        prompt_ids = tok.encode(prompt).ids
        cont = greedy(ref, prompt_ids, 64, device)
        fixtures.append({"prompt": prompt, "prompt_ids": prompt_ids, "greedy_ids": cont,
                         "greedy_text": tok.decode(cont, skip_special_tokens=False)})
        print(f"{prompt!r} -> {tok.decode(cont)!r}", flush=True)
    torch.manual_seed(7)
    sample_ids = tok.encode("<|user|>\nTell me a fortune.<|end|>\n<|assistant|>\n").ids
    sample = ref.generate(torch.tensor([sample_ids], device=device), max_new_tokens=60, do_sample=True,
                          temperature=0.8, top_p=0.95)[0][len(sample_ids):].tolist()
    report = {"parameters": params, "train_tokens": train_stream.numel(), "held_out_tokens": held_stream.numel(),
              "documents_train": len(train), "documents_held_out": len(held), "steps": args.steps,
              "best_step": best[2], "held_out_loss": round(best[0], 4), "history": history,
              "seed": args.seed, "seconds": round(time.time() - t0, 1),
              "chat_sample": tok.decode(sample, skip_special_tokens=False),
              "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "tokenizers": __import__("tokenizers").__version__}
    json.dump({"model": "models/demo", "dtype": "float32 arithmetic on bf16 weights", "max_new_tokens": 64,
               "made_by": "scripts/train-demo-model.py (transformers LlamaForCausalLM, eager attention)",
               "cases": fixtures}, open(os.path.join(out, "hf_greedy.json"), "w"), indent=1)
    json.dump(report, open(os.path.join(out, "training_report.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
