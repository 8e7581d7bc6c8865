// semantic_eval: `costgate eval semantic` on a deterministic subsample of the
// real evaluation data (../shared/data: STS-B, GPTCache's QQP pairs and
// paraphrases, Redis LangCache near misses, MeanCache follow-ups), small
// enough for the ASan+UBSan build. It asserts properties that break when the
// embedder or the second gate (src/cache/gate.c) breaks:
//
// - the embedder: STS-B Spearman of cosine vs human scores above a floor
//   (measured with --limit 100: test 0.7679, dev 0.8123, the same in the
//   release and ASan builds; full sets 0.7227 / 0.7839; floor = measured
//   minus about 0.05), and on QQP and LangCache the hit rate on duplicates
//   stays well above the false-hit rate on non-duplicates (mean difference
//   over thresholds 0.70-0.90 measured 0.348 and 0.184; floors 0.25, 0.10;
//   an embedder that no longer separates them gives about 0);
// - the gate: it only removes hits (gate hit counts <= no-gate counts at
//   every threshold), it raises precision at the default threshold on QQP and
//   LangCache, and it rejects every adversarial pair (numbers, negation in
//   English and Korean, quotes, names, time, units, direction, code, order)
//   with the rule built for it, although most cosines are 0.97-1.0;
// - the outputs: the JSON, the CSV files, and the bench/RESULTS.md block
//   replaced between its markers with the rest of the file untouched;
// - the learned verifier (src/cache/verifier.h): the shipped model
//   (config/semantic-verifier.bin) is found and evaluated, its columns and
//   operating point appear in the report, the JSON, verifier.csv and the
//   RESULTS.md block; QQP is split into train / validation / test with every
//   pair in one part; the verifier only removes hits the gate would serve;
//   --train-verifier writes byte-identical files from two runs (and a
//   different seed changes the file), and --no-verifier turns it off;
// - --help, bad options, missing data.
//
// Needs var/models/use-lite.bin (scripts/setup.sh) and ../shared/data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from '../lib/harness.mjs';

const run = promisify(execFile);
const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
const DATA = join(SHARED, 'data');
const MODEL = join(process.env.CG_SOURCE_DIR || ROOT, 'var', 'models', 'use-lite.bin');
const ready = existsSync(join(DATA, 'gptcache', 'similiar_qqp_full.json')) && existsSync(MODEL);
const LIMIT = 100;
const SPEARMAN_FLOOR = { test: 0.71, dev: 0.76 };
const SEPARATION_FLOOR = { qqp: 0.25, langcache: 0.10 };
let dir;

const cg = (args, opts = {}) =>
  run(BIN, args, { maxBuffer: 64 << 20, timeout: 300000, ...opts });

async function fails(args) {
  try {
    await cg(args);
  } catch (e) {
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
  assert.fail(`costgate ${args.join(' ')} succeeded`);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cg-sem-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('--help, bad options, missing data', async () => {
  const { stdout } = await cg(['eval', 'semantic', '--help']);
  assert.match(stdout, /usage: costgate eval semantic/);
    for (const opt of ['--limit', '--rules', '--csv', '--json', '--results-md', '--vectors',
    '--verifier', '--no-verifier', '--train-verifier', '--split', '--margin'])
    assert.ok(stdout.includes(opt), opt);
  const top = await cg(['--help']);
  assert.match(top.stdout, /eval semantic/);
  assert.equal((await fails(['eval'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--limit', 'many'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--rules', 'numbers,bogus'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--threads', '0'])).code, 2);
    assert.equal((await fails(['eval', 'semantic', 'extra'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--split', 'random'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--margin', '-1'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--margin', 'wide'])).code, 2);
  assert.equal((await fails(['eval', 'semantic', '--verifier-hidden', '65'])).code, 2);
  
  const nodata = await fails(['eval', 'semantic', '--data', join(dir, 'nowhere')]);
  assert.equal(nodata.code, 1);
  assert.match(nodata.out, /data directory not found/);
});

test('quick evaluation on real data', { skip: !ready && 'no ../shared/data or model' }, async () => {
  const json = join(dir, 'out.json');
  const csv = join(dir, 'csv');
  const md = join(dir, 'RESULTS.md');
  const before = '# results\n\nsome other section\n\n<!-- semantic-eval:begin -->\nold\n' +
    '<!-- semantic-eval:end -->\n\n## later section\nkept\n';
  writeFileSync(md, before);
  const { stdout } = await cg(['eval', 'semantic', '--limit', String(LIMIT), '--quiet',
    '--json', json, '--csv', csv, '--results-md', md]);
  assert.match(stdout, /STS-B Spearman/);
  assert.match(stdout, /Default threshold: 0\.\d\d/);
  const r = JSON.parse(readFileSync(json, 'utf8'));
  // the default is chosen with a margin of one standard error over the bar
  assert.equal(r.default_threshold.margin_stderr, 1);
  console.log(`STS-B Spearman test ${r.stsb_spearman.test.toFixed(4)} dev ` +
    `${r.stsb_spearman.dev.toFixed(4)}; default threshold ${r.default_threshold.threshold}`);

  // the embedder
  assert.equal(r.stsb_spearman.test_pairs, LIMIT);
  assert.ok(r.stsb_spearman.test >= SPEARMAN_FLOOR.test, `test ${r.stsb_spearman.test}`);
  assert.ok(r.stsb_spearman.dev >= SPEARMAN_FLOOR.dev, `dev ${r.stsb_spearman.dev}`);
  for (const key of ['qqp', 'langcache']) {
    const s = r.sets[key];
    assert.equal(s.pairs, LIMIT);
    assert.ok(s.positives > 20 && s.negatives > 20, key);
    const d = s.curve.filter((p) => p.threshold <= 0.9 + 1e-9)
      .map((p) => p.no_gate.hit_rate - p.no_gate.false_hit_rate);
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    assert.equal(d.length, 21);
    assert.ok(mean >= SEPARATION_FLOOR[key], `${key}: hit rate - false-hit rate ${mean}`);
  }

  // the gate only removes hits, and hits fall as the threshold rises
  for (const [key, s] of Object.entries(r.sets)) {
    let prev = null;
    for (const p of s.curve) {
      assert.ok(p.gate.hits_positive <= p.no_gate.hits_positive, key);
      assert.ok(p.gate.hits_negative <= p.no_gate.hits_negative, key);
      if (prev) {
        assert.ok(p.no_gate.hits_positive <= prev.no_gate.hits_positive, key);
        assert.ok(p.gate.hits_negative <= prev.gate.hits_negative, key);
      }
      prev = p;
    }
  }

  // at the default threshold the gate raises precision on QQP and LangCache
  const t = r.default_threshold.threshold;
  for (const key of ['qqp', 'langcache']) {
    const p = r.sets[key].curve.find((x) => Math.abs(x.threshold - t) < 1e-9);
    assert.ok(p, `${key} has the default threshold`);
    if (p.no_gate.hits_negative > 0) {
      assert.ok(p.gate.hits_negative < p.no_gate.hits_negative, `${key}: gate removes false hits`);
      assert.ok(p.gate.precision >= p.no_gate.precision, `${key} precision`);
    }
  }
  // and removes false hits somewhere on the curve in every negative set
  for (const key of ['qqp', 'langcache']) {
    const p = r.sets[key].curve[0];
    assert.ok(p.gate.hits_negative < p.no_gate.hits_negative, key);
  }

  // adversarial pairs: high cosine, rejected by the rule built for them
  assert.ok(r.adversarial.length >= 20);
  let high = 0;
  for (const a of r.adversarial) {
    if (a.expected === 'pass') continue; // a known limit, reported only
    assert.equal(a.verdict, a.expected, `${a.cached} | ${a.asked}: ${a.verdict}`);
    assert.ok(a.detail.length > 0);
    if (a.cosine >= 0.95) high++;
  }
  const numneg = r.adversarial.filter((a) => a.expected === 'numbers' || a.expected === 'negation');
  assert.ok(numneg.length >= 12);
  assert.ok(numneg.every((a) => a.verdict === a.expected));
  assert.ok(high >= 12, `${high} adversarial pairs with cosine >= 0.95`);
  assert.ok(r.adversarial.some((a) => /않아요/.test(a.asked) && a.verdict === 'negation'));
  for (const rule of ['numbers', 'negation', 'quotes', 'entities', 'time', 'units', 'direction',
    'code', 'order'])
    assert.ok(r.adversarial.some((a) => a.expected === rule && a.verdict === rule), rule);

  // the rule table covers every rule
  const names = r.rules_at_default.map((x) => x.rule);
  for (const n of ['numbers', 'negation', 'quotes', 'entities', 'time', 'units', 'order'])
    assert.ok(names.includes(n), n);

  // CSV outputs
  const curves = readFileSync(join(csv, 'curves.csv'), 'utf8').split('\n');
  assert.match(curves[0], /^set,threshold,gate,/);
  assert.equal(curves.filter((l) => l.startsWith('qqp,')).length, 60);
  assert.match(readFileSync(join(csv, 'rules.csv'), 'utf8'), /^rule,threshold,set,/);
  assert.match(readFileSync(join(csv, 'pairs.csv'), 'utf8'), /^set,split,label,cosine,verdict,/);
  assert.match(readFileSync(join(csv, 'adversarial.csv'), 'utf8'), /^cosine,verdict,expected\n/);

  // RESULTS.md: the block is replaced, everything else kept
  const after = readFileSync(md, 'utf8');
  assert.ok(after.startsWith('# results\n\nsome other section\n\n<!-- semantic-eval:begin -->\n'));
  assert.ok(after.endsWith('<!-- semantic-eval:end -->\n\n## later section\nkept\n'));
  assert.ok(!after.includes('\nold\n'));
  assert.match(after, /\| threshold \| QQP hit rate/);
  assert.match(after, /STS-B Spearman/);
    assert.equal(after.split('<!-- semantic-eval:begin -->').length, 2);

  // the learned verifier: the shipped model, evaluated on the QQP test split
  assert.match(stdout, /Learned verifier .*semantic-verifier\.bin \(loaded\)/);
  assert.match(stdout, /QQP test \(held out\):/);
  assert.match(stdout, /Curve on QQP test at floor 0\.\d\d/);
  const v = r.verifier;
  assert.ok(v && v.trained === false, 'verifier evaluated');
  assert.equal(v.split.method, 'components');
  assert.equal(v.split.train.pairs + v.split.validation.pairs + v.split.test.pairs, LIMIT);
  assert.ok(v.split.train.pairs > v.split.test.pairs && v.split.test.pairs > 0);
  assert.equal(v.operating_point.chosen_on, 'validation');
  assert.ok(v.operating_point.floor >= 0.7 && v.operating_point.floor <= 0.99);
  assert.ok(v.operating_point.threshold >= 0.5 && v.operating_point.threshold <= 0.99);
  assert.ok(v.model.train_pairs > 10000, 'the shipped model was fit on the full train split');
  assert.equal(v.curve_test.length, 50);
  for (const key of ['langcache', 'mock', 'meancache_followup', 'meancache_dup'])
    assert.ok(v.sets[key], key);
  // the verifier only removes hits: never more than the gate at the same floor
  const gateAtFloor = r.sets.qqp.curve.find((x) => Math.abs(x.threshold - v.operating_point.floor) < 1e-9);
  assert.ok(v.curve_test[0].hits_positive <= gateAtFloor.gate.hits_positive);
  for (let i = 1; i < v.curve_test.length; i++)
    assert.ok(v.curve_test[i].hits_positive + v.curve_test[i].hits_negative <=
      v.curve_test[i - 1].hits_positive + v.curve_test[i - 1].hits_negative);
  const vcsv = readFileSync(join(csv, 'verifier.csv'), 'utf8').split('\n');
  assert.match(vcsv[0], /^set,split,index,label,cosine,gate_pass,probability$/);
  assert.ok(vcsv.some((l) => /^qqp,test,/.test(l)));
  assert.match(after, /### Learned verifier, on the held-out QQP test split/);
  assert.match(after, /\| verifier threshold \| QQP test hit rate \| QQP test precision/);
});

test('--train-verifier is deterministic; --no-verifier', { skip: !ready && 'no ../shared/data or model' }, async () => {
  const a = join(dir, 'a.bin'), b = join(dir, 'b.bin'), c = join(dir, 'c.bin');
    // one embedding pass: the later runs read the vectors file
  const common = ['eval', 'semantic', '--limit', '200', '--quiet', '--vectors', join(dir, 'vec.bin')];
  const ra = await cg([...common, '--train-verifier', a, '--json', join(dir, 'a.json')]);
  await cg([...common, '--train-verifier', b]);
  await cg([...common, '--train-verifier', c, '--verifier-seed', '7', '--verifier-hidden', '2']);
  const ba = readFileSync(a), bb = readFileSync(b), bc = readFileSync(c);
  assert.ok(ba.length > 4000 && ba.length < 100 * 1024);
  assert.equal(ba.subarray(0, 8).toString(), 'CGSEMVER');
  assert.ok(ba.equals(bb), 'two runs, the same bytes');
  assert.ok(!ba.equals(bc), 'another seed and model, other bytes');
  assert.match(ra.stdout, /trained in this run/);
  const j = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'));
  assert.equal(j.verifier.trained, true);
  assert.ok(j.verifier.model.train_pairs > 0);
  // the trained file loads back and gives the same operating point
  const rl = await cg([...common, '--verifier', a, '--json', join(dir, 'l.json')]);
  assert.match(rl.stdout, /\(loaded\)/);
  const l = JSON.parse(readFileSync(join(dir, 'l.json'), 'utf8'));
  assert.equal(l.verifier.operating_point.floor, j.verifier.operating_point.floor);
  assert.equal(l.verifier.operating_point.threshold, j.verifier.operating_point.threshold);
  assert.deepEqual(l.verifier.qqp_test, j.verifier.qqp_test);
    // a damaged model file is refused, with the reason
  const bad = join(dir, 'bad.bin');
  const dmg = Buffer.from(ba);
  dmg[300] ^= 0x40;
  writeFileSync(bad, dmg);
  const badrun = await fails([...common, '--verifier', bad]);
  assert.equal(badrun.code, 1);
  assert.match(badrun.out, /checksum/);
  writeFileSync(bad, ba.subarray(0, ba.length - 1));
  assert.match((await fails([...common, '--verifier', bad])).out, /bytes|truncated/);
  const off = await cg([...common, '--no-verifier', '--json', join(dir, 'off.json')]);
  assert.match(off.stdout, /Learned verifier: none evaluated \(--no-verifier\)/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'off.json'), 'utf8')).verifier, null);
});
