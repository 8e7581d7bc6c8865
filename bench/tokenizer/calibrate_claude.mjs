// calibrate_claude: how the Claude estimator's base tokenizer was chosen.
//
// Owns: the comparison behind src/tokenize/claude.h: for the 809 real
// Claude 3 Haiku requests of ../shared/data/routerarena, the spread of
// (input_tokens - BASE) / base_tokens when the base count comes from the
// legacy Claude BPE (npm @anthropic-ai/tokenizer), cl100k_base or
// o200k_base (npm tiktoken), for BASE = 0..16, and the bound/coverage of
// the chosen one. The shipped constants are reproduced in C by
// tests/unit/tokenize/test_claude.c.
// Usage: node bench/tokenizer/calibrate_claude.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { get_encoding } from 'tiktoken';

const require = createRequire(import.meta.url);
const { countTokens } = require('@anthropic-ai/tokenizer');
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
const rows = readFileSync(join(SHARED, 'data/routerarena/claude-3-haiku-20240307.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l));
const o200k = get_encoding('o200k_base'), cl100k = get_encoding('cl100k_base');
const data = rows.map((r) => ({ y: r.token_usage.input_tokens, legacy: countTokens(r.question),
  cl100k: cl100k.encode_ordinary(r.question).length, o200k: o200k.encode_ordinary(r.question).length }));
const q = (s, p) => s[Math.max(0, Math.ceil(p * s.length) - 1)];
console.log(`${data.length} requests, ${data.reduce((a, d) => a + d.y, 0)} real input tokens\n`);
console.log('| base tokenizer | BASE | p50 ratio | p95 ratio | p95/p50 | max ratio | mean bound / mean real |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
const meanY = data.reduce((a, d) => a + d.y, 0) / data.length;
for (const k of ['legacy', 'cl100k', 'o200k']) {
  let best = null;
  for (let base = 0; base <= 16; base++) {
    const r = data.map((d) => Math.ceil(((d.y - base) * 1e6) / d[k])).sort((a, b) => a - b);
    const p50 = q(r, 0.5), p95 = q(r, 0.95);
    const mb = data.reduce((a, d) => a + base + Math.ceil((p95 * d[k]) / 1e6), 0) / data.length;
    const row = { base, p50, p95, max: r[r.length - 1], mb };
    if (!best || mb < best.mb - 0.5) best = row;
  }
  const f = (x) => (x / 1e6).toFixed(4);
  console.log(`| ${k} (smallest mean bound) | ${best.base} | ${f(best.p50)} | ${f(best.p95)} | ${(best.p95 / best.p50).toFixed(3)} | ${f(best.max)} | ${(best.mb / meanY).toFixed(3)} |`);
}

// The shipped configuration: cl100k with BASE 10 (mean bound within 0.2% of
// the smallest, and the best coverage of the BASE values near it).
{
  const base = 10;
  const r = data.map((d) => Math.ceil(((d.y - base) * 1e6) / d.cl100k)).sort((a, b) => a - b);
  const p50 = q(r, 0.5), p95 = q(r, 0.95);
  const cov = data.filter((d) => d.y <= base + Math.ceil((p95 * d.cl100k) / 1e6)).length;
  const mb = data.reduce((a, d) => a + base + Math.ceil((p95 * d.cl100k) / 1e6), 0) / data.length;
  console.log(`| **cl100k, shipped** | ${base} | ${(p50 / 1e6).toFixed(4)} | ${(p95 / 1e6).toFixed(4)} | ` +
    `${(p95 / p50).toFixed(3)} | ${(r[r.length - 1] / 1e6).toFixed(4)} | ${(mb / meanY).toFixed(3)} |`);
  console.log(`\nshipped: ratio_p50 ${p50} ppm, ratio_p95 ${p95} ppm, bound covers ${cov}/${data.length}`);
}
