// tokenizer_parity: our C encoder (`costgate tokens --b64-lines`) against the
// npm references, on every prompt and answer of ../shared/data/arena-hard, on
// adversarial strings (long digit runs, emoji, CJK, Korean, invalid UTF-8,
// whitespace, 1 MB of one character) and on random strings drawn from every
// Unicode class the split patterns distinguish.
//
// The reference for ids is OpenAI's tiktoken: its Rust core, run here as the
// npm package `tiktoken` (WASM). Ours must equal it on every string. The
// npm package gpt-tokenizer must also equal ours, except where gpt-tokenizer
// itself differs from tiktoken: its JavaScript regex treats U+FEFF as \s and
// U+0085 as not, uses Node's Unicode 17 tables (tiktoken: Unicode 16) and
// does not case-fold 's' to U+017F. Every such string is listed, and each one
// must contain one of those characters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { get_encoding } from 'tiktoken';
import * as gO from 'gpt-tokenizer/encoding/o200k_base';
import * as gC from 'gpt-tokenizer/encoding/cl100k_base';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
const BIN = process.env.COSTGATE_BIN || join(ROOT, 'build', 'costgate');
const DATA = join(ROOT, 'node_modules', 'gpt-tokenizer', 'data');

// `costgate tokens` once main.c wires it; until then the unit-test binary
// that embeds the same command (tests/unit/tokenize/test_cli.c).
function driver() {
  const cands = [[BIN, ['tokens']], [join(dirname(BIN), 'unit_tokenize_test_cli'), ['tokens']]];
  for (const [bin, pre] of cands) {
    if (!existsSync(bin)) continue;
    const r = spawnSync(bin, [...pre, '--help'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.includes('costgate tokens')) return [bin, pre];
  }
  throw new Error('no binary with the tokens command (build first)');
}

// Encodes Buffers with our binary, one process per encoding.
function ours(enc, bufs) {
  const [bin, pre] = driver();
  const input = bufs.map((b) => b.toString('base64')).join('\n') + '\n';
  const out = execFileSync(bin, [...pre, '--b64-lines', '--encoding', enc, '--data-dir', DATA],
    { input, maxBuffer: 1 << 30 }).toString();
  const lines = out.split('\n');
  assert.equal(lines.length, bufs.length + 1, 'one output line per input');
  return lines.slice(0, bufs.length);
}

const REF = {
  o200k_base: { tk: get_encoding('o200k_base'), gpt: gO },
  cl100k_base: { tk: get_encoding('cl100k_base'), gpt: gC },
};
const NO_SPECIAL = { disallowedSpecial: new Set() };
const td = new TextDecoder('utf-8', { ignoreBOM: true }); // WHATWG: invalid -> U+FFFD, BOM kept
const refTk = (enc, s) => Array.from(REF[enc].tk.encode_ordinary(s)).join(',');
const refGpt = (enc, s) => REF[enc].gpt.encode(s, NO_SPECIAL).join(',');
// Characters on which gpt-tokenizer's JS regex and tiktoken disagree.
const GPT_DIVERGENT = /[\ufeff\u0085\u017f]|[^\p{L}\p{N}\s\p{M}\p{P}\p{S}\p{C}\p{Z}]/u;
const U17 = ['\u{16EA0}', '\u{16EA1}', '\u{1E6C0}'];

function compare(enc, label, bufs) {
  const got = ours(enc, bufs);
  let gptDiff = [];
  for (let i = 0; i < bufs.length; i++) {
    const s = td.decode(bufs[i]);
    const tk = refTk(enc, s);
    if (got[i] !== tk) {
      assert.fail(`${label} ${enc} #${i} differs from tiktoken: ${JSON.stringify(s.slice(0, 120))}\n` +
        ` ours ${got[i].slice(0, 200)}\n tiktoken ${tk.slice(0, 200)}`);
    }
    if (refGpt(enc, s) !== tk) gptDiff.push(s);
  }
  for (const s of gptDiff) {
    const explained = GPT_DIVERGENT.test(s) || U17.some((c) => s.includes(c));
    assert.ok(explained, `${label} ${enc}: gpt-tokenizer differs for a string with no known cause: ` +
      JSON.stringify(s.slice(0, 200)));
  }
  return { n: bufs.length, bytes: bufs.reduce((a, b) => a + b.length, 0), gptDiff: gptDiff.length };
}

function arenaHard() {
  const dir = join(SHARED, 'data', 'arena-hard');
  const texts = [];
  const lines = (f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const f of ['v0.1_question.jsonl', 'v2.0_question.jsonl']) for (const r of lines(f)) texts.push(r.prompt);
  for (const f of ['v0.1_answer_gpt-3.5-turbo-0125.jsonl', 'v0.1_answer_gpt-4-0314.jsonl', 'v0.1_answer_gpt-4-0613.jsonl']) {
    for (const r of lines(f)) {
      for (const m of r.messages) {
        const c = m.content;
        texts.push(typeof c === 'string' ? c : c.answer);
      }
    }
  }
  return texts;
}

function adversarial() {
  const s = [];
  const rep = (x, n) => x.repeat(n);
  s.push(rep('1234567890', 1000), rep('9', 10001), '3.14159265358979323846264338327950288',
    rep('0', 7) + ' ' + rep('12', 50) + ' ١٢٣٤٥٦٧ ²³ ½ Ⅻ 𝟙𝟚𝟛', '-1,000,000.00e+10');
  s.push('👨‍👩‍👧‍👦 👍🏽 🇺🇸🇯🇵 🏳️‍🌈 ❤️‍🔥 😀😃😄😁' + rep('🙂', 500), rep('👨‍👩‍👧‍👦', 200));
  s.push('中文分词测试：今天天气很好，我们去公园散步吧！', rep('漢字', 3000), '日本語のテキスト、カタカナとひらがな。ｶﾀｶﾅ',
    '한국어 텍스트입니다. 안녕하세요! 대한민국', rep('한', 5000), 'ภาษาไทย العربية עברית हिन्दी বাংলা');
  s.push("don't DON'T we'll WE'LL I'm i'M they've THEY'VE you're YOU'RE he'd HE'D it's IT'S 'S 's'll",
    "l'ſ x'ſt rock'n'roll ''''s", 'camelCaseWordsAndHTTPServer XMLHttpRequest ǅungla ǈubav ʰʲʷ');
  s.push(' \t \n\n \r\n   \u3000\u00a0x\u2028\u2029  \n', rep(' ', 3000) + 'x', rep('\n', 2000), rep(' \n', 1000),
    'a\u0085b \ufeffc \u200bd\u200d', '\t\tfoo\n\t\tbar\n', rep('\r\n', 500) + 'end   ');
  s.push('e\u0301 \u0301\u0301a ñ Å ﬁ ﬀ ℌ ℍ', 'a\u20dd\u0903 ॐ क्ष', 'https://example.com/a/b?c=d&e=f#g //x//\n/\n//');
  s.push(...U17.map((c) => `${c}'ll x${c}y`), '\u{1E5D0}\u{1E5D1} \u{10D4A}abc');
  s.push('<|endoftext|> <|endofprompt|> <|im_start|>user', rep('!?', 2000), rep('.', 5000));
  return s.map((x) => Buffer.from(x, 'utf8'));
}

function invalidUtf8() {
  const h = (x) => Buffer.from(x, 'hex');
  return [h('ff'), h('c0af'), h('e08080'), h('eda080'), h('f4908080'), h('f09f98'), h('61e1804162'),
    h('80808080'), h('c3'), h('68656c6c6fff776f726c64'), Buffer.concat([Buffer.from('abc '), h('fe'), Buffer.from(' déf')]),
    Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) & 255))];
}

function randomStrings(n, seed) {
  const pool = [...'aAbZzs\'tTlLdDmMvVrReE', ' ', ' ', ' ', '\t', '\n', '\r', '\u00a0', '\u3000', '\u2028', '\u0085',
    '\ufeff', '0', '7', '\u0663', '\u2160', '\u00bd', '!', '.', '/', '\\', '-', '"', 'é', 'e\u0301', '\u0301', '\u20dd',
    '\u0903', 'ǅ', 'ʰ', '中', '文', '한', '국', 'ſ', 'ß', 'Σ', 'ς', '😀', '👍🏽', '\u200d', '\u{1E5D0}', '\u{16EA0}',
    'ー', 'ア', '\u0640', 'Ａ', 'ａ', '١', '\ud800'];
  let x = seed;
  const rnd = (k) => { x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff; return x % k; };
  const out = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + rnd(30);
    for (let k = 0; k < len; k++) s += pool[rnd(pool.length)];
    out.push(Buffer.from(s, 'utf8')); // a lone surrogate becomes EF BF BD
  }
  return out;
}

for (const enc of ['o200k_base', 'cl100k_base']) {
  test(`${enc}: every arena-hard prompt and answer`, () => {
    const texts = arenaHard();
    assert.equal(texts.length, 4250);
    const r = compare(enc, 'arena-hard', texts.map((t) => Buffer.from(t, 'utf8')));
    console.log(`# ${enc} arena-hard: ${r.n} texts, ${r.bytes} bytes identical to tiktoken; ` +
      `gpt-tokenizer differs from both on ${r.gptDiff} (U+FEFF)`);
  });

  test(`${enc}: adversarial strings and invalid UTF-8`, () => {
    const r = compare(enc, 'adversarial', [...adversarial(), ...invalidUtf8()]);
    console.log(`# ${enc} adversarial: ${r.n} strings identical to tiktoken; gpt-tokenizer differs on ${r.gptDiff}`);
  });

  test(`${enc}: random strings over every split class`, () => {
    const r = compare(enc, 'random', randomStrings(3000, enc === 'o200k_base' ? 1 : 2));
    console.log(`# ${enc} random: ${r.n} strings identical to tiktoken; gpt-tokenizer differs on ${r.gptDiff}`);
  });

  // The references are O(n^2) on one long piece (tiktoken's byte_pair_merge
  // and gpt-tokenizer's merge both rescan all parts per merge: 20 K 'a' take
  // over a second, 1 MB would take about an hour), so 1 MB is checked via
  // periodicity proven by the reference itself: when ref(c*2K) is
  // ref(c*K) twice, ours(c*K*M) must be ref(c*K) M times.
  test(`${enc}: 1 MB of one character`, () => {
    const K = 4096;
    const chars = ['a', ' ', '中', '😀', '\n'];
    const big = [], expect = [];
    let checked = 0;
    for (const c of chars) {
      const one = refTk(enc, c.repeat(K));
      assert.equal(refGpt(enc, c.repeat(K)), one);
      if (refTk(enc, c.repeat(2 * K)) !== one + ',' + one) continue;
      const m = Math.ceil((1 << 20) / Buffer.byteLength(c.repeat(K)));
      big.push(Buffer.from(c.repeat(K * m)));
      expect.push(Array(m).fill(one).join(','));
      checked++;
    }
    const t0 = Date.now();
    const got = ours(enc, big);
    const ms = Date.now() - t0;
    for (let i = 0; i < big.length; i++) assert.equal(got[i], expect[i], `1 MB string #${i}`);
    console.log(`# ${enc}: ${checked} of ${chars.length} characters periodic; ${checked} x 1 MB encoded in ${ms} ms`);
    assert.ok(checked >= 4);
  });
}
