#!/usr/bin/env node
// texts.mjs: the texts of the semantic-cache benchmarks, from the GPTCache QQP
// pairs in ../shared/data (see bench/semantic/run.sh). Deterministic.
//
//   node bench/semantic/texts.mjs index N          distinct QQP questions, one per line (the
//                                                  first N, for the 100k-vector partition)
//   node bench/semantic/texts.mjs queries M SKIP   M distinct 20-word queries, one per line,
//                                                  made of questions after the first SKIP
//                                                  (never in the index): two joined, cut to
//                                                  20 words
//   add --json to write each line as a JSON string literal (for wrk bodies),
//   --distinct-first to start every query with a different question (no two
//   queries then share their first words: M is at most the questions left)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.env.CG_SHARED_DIR || path.join(here, '..', '..', '..', 'shared');
const file = path.join(shared, 'data', 'gptcache', 'similiar_qqp_full.json');
const args = process.argv.slice(2);
const json = args.includes('--json');
const distinctFirst = args.includes('--distinct-first');
const [mode, nArg, skipArg] = args.filter((a) => !a.startsWith('--'));

const pairs = JSON.parse(fs.readFileSync(file, 'utf8'));
const seen = new Set();
const texts = [];
for (const p of pairs)
  for (const t of [p.text_a, p.text_b]) {
    const s = String(t || '').replace(/\s+/g, ' ').trim();
    if (s && !seen.has(s)) {
      seen.add(s);
      texts.push(s);
    }
  }

let rs = 0x2545f491;
const rnd = (m) => {
  rs ^= rs << 13; rs >>>= 0;
  rs ^= rs >>> 17;
  rs ^= rs << 5; rs >>>= 0;
  return rs % m;
};

const out = [];
const emit = (s) => out.push(json ? JSON.stringify(s) : s);
if (mode === 'index') {
  const n = Math.min(Number(nArg) || 100000, texts.length);
  for (let i = 0; i < n; i++) emit(texts[i]);
} else if (mode === 'queries') {
  const m = Number(nArg) || 1000, skip = Number(skipArg) || 0;
  const pool = texts.slice(skip);
  if (pool.length < 2) throw new Error(`only ${texts.length} texts`);
  const made = new Set();
  const order = pool.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rnd(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  let next = 0;
  while (made.size < m) {
    if (distinctFirst && next >= order.length) throw new Error(`only ${order.length} first questions`);
    const first = distinctFirst ? pool[order[next++]] : pool[rnd(pool.length)];
    const words = (first + ' ' + pool[rnd(pool.length)]).split(' ');
    if (words.length < 20) continue;
    const q = words.slice(0, 20).join(' ');
    if (made.has(q)) continue;
    made.add(q);
    emit(q);
  }
} else {
  console.error('usage: texts.mjs index N | queries M SKIP [--json]');
  process.exit(2);
}
process.stdout.write(out.join('\n') + '\n');
