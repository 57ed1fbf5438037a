#!/usr/bin/env python3
"""Makes the tokenizer reference fixtures with Hugging Face `tokenizers` (run where it is installed).

For each real tokenizer (a folder NAME/ with tokenizer.json under --tokfiles, plain or .gz) and for
each VARIANT below (a real tokenizer.json with some top-level parts replaced, to cover the
normalizers, pre-tokenizers, post-processors, decoders and added-token flags that the real files do
not use), it writes OUT/fixtures/<name>.jsonl:

  line 1: {"name", "base", "variant": {...patch...} or null, "tokenizers_version"}
  corpus lines: {"i": index into corpus.jsonl, "ids": encode(s, add_special_tokens=False).ids,
                 "ids_sp": ids with add_special_tokens=True (only for every 5th string, and only
                           when different from "ids"),
                 "dec": decode(ids) (only when different from s),
                 "dec_skip": decode(ids, skip_special_tokens=True) (only when different from dec)}
  random lines: {"r": k, "ids": random ids (byte-fallback and special ids favoured),
                 "dec": decode(ids), "dec_skip": decode(ids, skip_special_tokens=True)}

It also times single-threaded encoding of the benchmark texts (--bench-dir) and writes
OUT/bench.json. Nothing here decides what is right: the ids are whatever `tokenizers` gives.

Usage (GPU machine): TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 \
  python3 scripts/make_tokenizer_fixtures.py --tokfiles .tokfiles --out "$OUT"
"""
import argparse
import copy
import gzip
import json
import os
import random
import sys
import time
import traceback

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

REAL = ["llama3", "qwen3", "deepseek_v3", "llama2", "mistral_nemo"]


def load_variants(path):
    """The variants: a real tokenizer.json with top-level parts replaced ("set"), model fields
    replaced ("model_set") and added tokens appended ("added_append"). Strip decoders keep
    stop=0: tokenizers 0.23 panics decoding an empty list with stop > 0."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_json_maybe_gz(path):
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rt", encoding="utf-8") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def apply_variant(base_json, variant):
    j = json.loads(base_json)
    for key, value in variant.get("set", {}).items():
        j[key] = copy.deepcopy(value)
    for key, value in variant.get("model_set", {}).items():
        j["model"][key] = value
    if variant.get("added_append"):
        j["added_tokens"] = j["added_tokens"] + copy.deepcopy(variant["added_append"])
    return json.dumps(j, ensure_ascii=False)


def random_ids(r, vocab_size, byte_ids, special_ids, n):
    out = []
    for _ in range(n):
        ids = []
        for _ in range(r.randint(1, 40)):
            k = r.random()
            if k < 0.25 and byte_ids:
                ids.append(r.choice(byte_ids))
            elif k < 0.35 and special_ids:
                ids.append(r.choice(special_ids))
            elif k < 0.5:
                ids.append(r.randint(0, min(vocab_size, 300) - 1))
            else:
                ids.append(r.randint(0, vocab_size - 1))
        out.append(ids)
    return out


def write_fixture(tok, name, base, variant, corpus, indices, out_dir, log):
    lines = [json.dumps({"name": name, "base": base, "variant": variant,
                         "tokenizers_version": tokenizers.__version__}, ensure_ascii=False)]
    mismatched_ids = []
    if variant:
        for a in variant.get("added_append", []):
            got = tok.token_to_id(a["content"])
            if got != a["id"]:
                mismatched_ids.append((a["content"], a["id"], got))
    for i in indices:
        s = corpus[i]
        ids = tok.encode(s, add_special_tokens=False).ids
        rec = {"i": i, "ids": ids}
        if i % 5 == 0:
            ids_sp = tok.encode(s, add_special_tokens=True).ids
            if ids_sp != ids:
                rec["ids_sp"] = ids_sp
        dec = tok.decode(ids, skip_special_tokens=False)
        if dec != s:
            rec["dec"] = dec
        dec_skip = tok.decode(ids, skip_special_tokens=True)
        if dec_skip != dec:
            rec["dec_skip"] = dec_skip
        lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    vocab = tok.get_vocab(with_added_tokens=True)
    vocab_size = max(vocab.values()) + 1
    byte_ids = sorted(v for k, v in vocab.items() if len(k) == 6 and k.startswith("<0x") and k.endswith(">"))
    special_ids = sorted(tok.get_added_tokens_decoder().keys())
    r = random.Random(hash_name(name))
    for k, ids in enumerate(random_ids(r, vocab_size, byte_ids, special_ids, 150)):
        rec = {"r": k, "ids": ids, "dec": tok.decode(ids, skip_special_tokens=False),
               "dec_skip": tok.decode(ids, skip_special_tokens=True)}
        lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    path = os.path.join(out_dir, name + ".jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    log(f"{name}: {len(indices)} strings, {os.path.getsize(path)} bytes, added-id mismatches: {mismatched_ids}")


def hash_name(name):
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (1 << 31)
    return h


def bench(tok, text, reps=3):
    tok.encode(text[:20000], add_special_tokens=False)
    best = float("inf")
    n = 0
    for _ in range(reps):
        t0 = time.perf_counter()
        n = len(tok.encode(text, add_special_tokens=False).ids)
        best = min(best, time.perf_counter() - t0)
    lines = text.split("\n")
    t0 = time.perf_counter()
    for line in lines:
        tok.encode(line, add_special_tokens=False)
    per_line = time.perf_counter() - t0
    mb = len(text.encode()) / 1e6
    return {"mb": mb, "tokens": n, "whole_s": best, "whole_mb_s": mb / best,
            "lines": len(lines), "per_line_s": per_line, "per_line_mb_s": mb / per_line}


def main():
    parser = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--tokfiles", required=True)
    parser.add_argument("--corpus", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer", "corpus.jsonl"))
    parser.add_argument("--variants", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer", "variants.json"))
    parser.add_argument("--bench-dir", default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out_dir = os.path.join(args.out, "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    with open(args.corpus, encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f.read().split("\n") if line]
    log(f"tokenizers {tokenizers.__version__}, corpus {len(corpus)} strings, python {sys.version.split()[0]}")
    base_json = {}
    loaded = {}
    for name in REAL:
        try:
            base_json[name] = read_json_maybe_gz(os.path.join(args.tokfiles, name, "tokenizer.json"))
            loaded[name] = Tokenizer.from_str(base_json[name])
            write_fixture(loaded[name], name, name, None, corpus, range(len(corpus)), out_dir, log)
        except BaseException:  # a Rust panic is a BaseException, not an Exception
            log(f"{name}: FAILED\n{traceback.format_exc()}")
    for variant in load_variants(args.variants):
        try:
            tok = Tokenizer.from_str(apply_variant(base_json[variant["base"]], variant))
            indices = [i for i in range(len(corpus)) if i % 5 == 0 or i % 7 == 3]
            write_fixture(tok, variant["name"], variant["base"], variant, corpus, indices, out_dir, log)
        except BaseException:
            log(f"{variant['name']}: FAILED\n{traceback.format_exc()}")

    results = {"tokenizers_version": tokenizers.__version__, "cpu": cpu_name(), "runs": []}
    if args.bench_dir:
        for text_name in ["english.txt", "cjk.txt"]:
            path = os.path.join(args.bench_dir, text_name)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for name in ["llama3", "qwen3", "deepseek_v3", "llama2", "mistral_nemo"]:
                if name not in loaded:
                    continue
                try:
                    res = bench(loaded[name], text)
                    res.update({"tokenizer": name, "text": text_name})
                    results["runs"].append(res)
                    log(f"bench {name:13s} {text_name:12s} whole {res['whole_mb_s']:7.2f} MB/s  "
                        f"per-line {res['per_line_mb_s']:7.2f} MB/s  ({res['tokens']} tokens, {res['mb']:.2f} MB)")
                except BaseException:
                    log(f"bench {name} {text_name}: FAILED\n{traceback.format_exc()}")
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "log.txt"), "w") as f:
        f.write("\n".join(log_lines) + "\n")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
