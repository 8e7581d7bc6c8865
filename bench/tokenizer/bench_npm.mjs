// bench_npm: the npm side of the tokenizer benchmark (bench/tokenizer/run.sh).
//
// Owns: the corpus (every prompt and answer of ../shared/data/arena-hard,
// written once as corpus.bin for the C side: u32 little-endian length +
// UTF-8 bytes per text) and the measurements of gpt-tokenizer, js-tiktoken
// and tiktoken (WASM) on it: rank-table load time and heap, throughput over
// REPEATS full passes, per-request latency, and single-piece worst cases.
// Usage: node bench_npm.mjs OUT_DIR ENCODING 0           (writes OUT_DIR/corpus.bin)
//        node bench_npm.mjs '' ENCODING REPEATS [noworst] (one JSON line per encoder)
// js-tiktoken is about 10x slower than the others, so it runs at most 2
// timed passes and 1 latency pass.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
const [outDir, enc = 'o200k_base', repeatsArg = '5', noworst] = process.argv.slice(2);
const REPEATS = Number(repeatsArg);

export function corpus() {
  const dir = join(SHARED, 'data', 'arena-hard');
  const rows = (f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const texts = [];
  for (const f of ['v0.1_question.jsonl', 'v2.0_question.jsonl']) for (const r of rows(f)) texts.push(r.prompt);
  for (const f of ['v0.1_answer_gpt-3.5-turbo-0125.jsonl', 'v0.1_answer_gpt-4-0314.jsonl', 'v0.1_answer_gpt-4-0613.jsonl']) {
    for (const r of rows(f)) for (const m of r.messages) texts.push(typeof m.content === 'string' ? m.content : m.content.answer);
  }
  return texts;
}

const texts = corpus();
const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
if (outDir) {
  const parts = [];
  for (const t of texts) {
    const b = Buffer.from(t, 'utf8');
    const h = Buffer.alloc(4);
    h.writeUInt32LE(b.length);
    parts.push(h, b);
  }
  writeFileSync(join(outDir, 'corpus.bin'), Buffer.concat(parts));
}
if (REPEATS === 0) process.exit(0);

const now = () => Number(process.hrtime.bigint()) / 1e9;
const heap = () => { globalThis.gc?.(); return process.memoryUsage(); };

async function load(name) {
  const m0 = heap();
  const t0 = now();
  let encode;
  if (name === 'gpt-tokenizer') {
    const g = await import(`gpt-tokenizer/encoding/${enc}`);
    const opt = { disallowedSpecial: new Set() };
    g.encode('warm up', opt);
    encode = (s) => g.encode(s, opt);
  } else if (name === 'js-tiktoken') {
    const { Tiktoken } = await import('js-tiktoken/lite');
    const ranks = (await import(`js-tiktoken/ranks/${enc}`)).default;
    const t = new Tiktoken(ranks);
    encode = (s) => t.encode(s, [], []);
  } else {
    const { get_encoding } = await import('tiktoken');
    const t = get_encoding(enc);
    encode = (s) => t.encode_ordinary(s);
  }
  const loadMs = (now() - t0) * 1e3;
  const m1 = heap();
  return { encode, loadMs, heapKb: Math.round((m1.heapUsed + m1.external + m1.arrayBuffers - m0.heapUsed - m0.external - m0.arrayBuffers) / 1024), rssKb: Math.round((m1.rss - m0.rss) / 1024) };
}

function quantile(sorted, q) { return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]; }

const WORST = { 'gpt-tokenizer': [4096, 16384], 'tiktoken-wasm': [4096, 16384], 'js-tiktoken': [4096] };

for (const name of ['gpt-tokenizer', 'js-tiktoken', 'tiktoken-wasm']) {
  const { encode, loadMs, heapKb, rssKb } = await load(name);
  let tokens = 0;
  for (const t of texts) tokens += encode(t).length; // warm-up pass (fills caches, JIT)
  let best = Infinity, sum = 0;
  const slow = name === 'js-tiktoken';
  const repeats = slow ? Math.min(REPEATS, 2) : REPEATS;
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    for (const t of texts) encode(t);
    const d = now() - t0;
    sum += d;
    best = Math.min(best, d);
  }
  const lat = [];
  for (let r = 0; r < (slow ? 1 : 3); r++) for (const t of texts) { const t0 = now(); encode(t); lat.push((now() - t0) * 1e6); }
  lat.sort((a, b) => a - b);
  const worst = [];
  for (const ch of noworst ? [] : ['a', ' ', '!']) {
    for (const n of WORST[name]) {
      const s = ch.repeat(n);
      const t0 = now();
      const k = encode(s).length;
      worst.push({ char: ch, bytes: n, tokens: k, ms: +((now() - t0) * 1e3).toFixed(3) });
    }
  }
  console.log(JSON.stringify({ encoder: name, encoding: enc, texts: texts.length, bytes, tokens, repeats,
    best_s: +best.toFixed(6), mean_s: +(sum / repeats).toFixed(6), mb_per_s_best: +(bytes / 1e6 / best).toFixed(2),
    mb_per_s_mean: +(bytes / 1e6 / (sum / repeats)).toFixed(2), lat_us_p50: +quantile(lat, 0.5).toFixed(2),
    lat_us_p99: +quantile(lat, 0.99).toFixed(2), lat_us_max: +lat[lat.length - 1].toFixed(2),
    load_ms: +loadMs.toFixed(1), heap_delta_kb: heapKb, rss_delta_kb: rssKb, worst }));
}
