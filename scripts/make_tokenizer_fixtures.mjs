#!/usr/bin/env node
// The Node.js twin of make_tokenizer_fixtures.py, on the npm build of the same Hugging Face
// `tokenizers` Rust core (package `tokenizers`, version 0.23.2, prebuilt for linux-x64), so that
// fixtures can be made and checked on a machine without Python's `tokenizers`.
//
//   node scripts/make_tokenizer_fixtures.mjs --pkg DIR [--only a,b] [--out DIR] [--check DIR]
//     --pkg    the unpacked npm package (scripts/bench_tokenizer.sh fetches it)
//     --out    write <name>.jsonl for the real tokenizers and variants (same format as the .py)
//     --check  re-run every fixture in DIR (*.jsonl.gz) and count differences from it
//   node scripts/make_tokenizer_fixtures.mjs --pkg DIR --bench TEXT_DIR
//     single-threaded encode speed of english.txt and cjk.txt, as the .py measures it
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
  return acc;
}, []));
const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, '..');
const fixtureDir = path.join(root, 'tests', 'fixtures', 'tokenizer');
const cache = process.env.ACTORSERVE_TEST_CACHE || path.join(root, '.cache');
const { Tokenizer } = createRequire(import.meta.url)(path.resolve(args.pkg, 'index.js'));

const REAL = ['llama3', 'qwen3', 'deepseek_v3', 'llama2', 'mistral_nemo'];
// Tokenizers kept in the repository itself (the demo model's, trained with `tokenizers`).
const IN_REPO = { demo: path.join(root, 'models', 'demo', 'tokenizer.json') };
const corpus = fs.readFileSync(path.join(fixtureDir, 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const variants = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'variants.json'), 'utf8'));

function baseJson(name) {
  return fs.readFileSync(IN_REPO[name] || path.join(cache, 'tokenizers', name, 'tokenizer.json'), 'utf8');
}

function applyVariant(text, v) {
  const j = JSON.parse(text);
  for (const [k, val] of Object.entries(v.set || {})) j[k] = val;
  for (const [k, val] of Object.entries(v.model_set || {})) j.model[k] = val;
  if (v.added_append) j.added_tokens = j.added_tokens.concat(v.added_append);
  return JSON.stringify(j);
}

function load(name) {
  if (REAL.includes(name) || IN_REPO[name]) return { tok: Tokenizer.fromString(baseJson(name)), base: name, variant: null };
  const v = variants.find((x) => x.name === name);
  if (!v) throw new Error(`unknown tokenizer or variant ${name}`);
  return { tok: Tokenizer.fromString(applyVariant(baseJson(v.base), v)), base: v.base, variant: v };
}

const encode = async (tok, s, special) => (await tok.encode(s, null, { addSpecialTokens: special })).getIds();
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// mulberry32: a small deterministic generator for the random id lists.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIds(tok, name, count) {
  const vocab = tok.getVocab(true);
  const ids = Object.values(vocab);
  const size = ids.reduce((m, x) => Math.max(m, x), 0) + 1;
  const byteIds = Object.entries(vocab).filter(([k]) => /^<0x[0-9A-Fa-f]{2}>$/.test(k)).map(([, v]) => v);
  const specials = [];
  for (let id = 0; id < size; id++) {
    const t = tok.idToToken(id);
    if (t !== null && /^<[|｜].*[|｜]>$|^<\/?s>$|^<unk>$|^\[.*\]$|^<.*>$/.test(t) && !byteIds.includes(id)) specials.push(id);
  }
  let seed = 0;
  for (const ch of Buffer.from(name)) seed = (seed * 131 + ch) % 2147483648;
  const r = rng(seed);
  const pick = (list) => list[Math.floor(r() * list.length)];
  const out = [];
  for (let n = 0; n < count; n++) {
    const len = 1 + Math.floor(r() * 40);
    const list = [];
    for (let i = 0; i < len; i++) {
      const k = r();
      if (k < 0.25 && byteIds.length) list.push(pick(byteIds));
      else if (k < 0.35 && specials.length) list.push(pick(specials));
      else if (k < 0.5) list.push(Math.floor(r() * Math.min(size, 300)));
      else list.push(Math.floor(r() * size));
    }
    out.push(list);
  }
  return out;
}

async function makeFixture(name, outDir) {
  const { tok, base, variant } = load(name);
  const lines = [JSON.stringify({ name, base, variant, tokenizers_version: '0.23.2 (npm)' })];
  const indices = variant ? corpus.map((_, i) => i).filter((i) => i % 5 === 0 || i % 7 === 3) : corpus.map((_, i) => i);
  for (const i of indices) {
    const s = corpus[i];
    const ids = await encode(tok, s, false);
    const rec = { i, ids };
    if (i % 5 === 0) {
      const sp = await encode(tok, s, true);
      if (!same(sp, ids)) rec.ids_sp = sp;
    }
    const dec = await tok.decode(ids, false);
    if (dec !== s) rec.dec = dec;
    const skip = await tok.decode(ids, true);
    if (skip !== dec) rec.dec_skip = skip;
    lines.push(JSON.stringify(rec));
  }
  for (const [k, ids] of randomIds(tok, name, 150).entries())
    lines.push(JSON.stringify({ r: k, ids, dec: await tok.decode(ids, false), dec_skip: await tok.decode(ids, true) }));
  fs.writeFileSync(path.join(outDir, `${name}.jsonl`), lines.join('\n') + '\n');
  console.log(`${name}: ${indices.length} strings`);
}

async function checkFixture(file) {
  const lines = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n').filter(Boolean).map(JSON.parse);
  const { tok } = load(lines[0].name);
  let bad = 0;
  for (const rec of lines.slice(1)) {
    if ('i' in rec) {
      const s = corpus[rec.i];
      if (!same(await encode(tok, s, false), rec.ids)) bad++;
      if (rec.i % 5 === 0 && !same(await encode(tok, s, true), rec.ids_sp || rec.ids)) bad++;
      const dec = await tok.decode(rec.ids, false);
      if (dec !== (rec.dec ?? s)) bad++;
      if ((await tok.decode(rec.ids, true)) !== (rec.dec_skip ?? rec.dec ?? s)) bad++;
    } else {
      if ((await tok.decode(rec.ids, false)) !== rec.dec) bad++;
      if ((await tok.decode(rec.ids, true)) !== rec.dec_skip) bad++;
    }
  }
  console.log(`${lines[0].name}: ${lines.length - 1} records, ${bad} differences`);
  return bad;
}

async function bench(textDir) {
  const results = [];
  for (const textName of ['english.txt', 'cjk.txt']) {
    const text = fs.readFileSync(path.join(textDir, textName), 'utf8');
    const mb = Buffer.byteLength(text) / 1e6;
    for (const name of REAL) {
      const { tok } = load(name);
      await encode(tok, text.slice(0, 20000), false);
      // Wall time and process CPU time (the encode runs on one pool thread while this one waits).
      let best = Infinity, bestCpu = Infinity, tokens = 0;
      for (let rep = 0; rep < 3; rep++) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        tokens = (await encode(tok, text, false)).length;
        const c = process.cpuUsage(c0);
        bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
      }
      results.push({ tokenizer: name, text: textName, mb, tokens, whole_s: best, whole_mb_s: mb / best, cpu_mb_s: mb / bestCpu });
      console.log(`hf-node ${name.padEnd(13)} ${textName.padEnd(12)} whole ${(mb / best).toFixed(2).padStart(7)} MB/s ` +
                  `(cpu ${(mb / bestCpu).toFixed(2).padStart(7)})  (${tokens} tokens)`);
    }
  }
  return results;
}

if (args.bench) {
  const results = await bench(args.bench);
  if (args['bench-json']) fs.writeFileSync(args['bench-json'], JSON.stringify(results, null, 1));
} else if (args.check) {
  let bad = 0;
  for (const f of fs.readdirSync(args.check).filter((f) => f.endsWith('.jsonl.gz')).sort())
    bad += await checkFixture(path.join(args.check, f));
  process.exitCode = bad ? 1 : 0;
} else {
  const outDir = args.out || fixtureDir;
  fs.mkdirSync(outDir, { recursive: true });
  const names = args.only ? String(args.only).split(',') : REAL.concat(variants.map((v) => v.name));
  for (const name of names) await makeFixture(name, outDir);
}
