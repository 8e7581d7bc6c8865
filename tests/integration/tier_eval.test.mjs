// tier_eval: `costgate tier-train` and `costgate tier-eval` on the real
// replay data (../shared/data/routellm: MMLU and GSM8K prompts with Mixtral
// and GPT-4 correctness). The learned router is trained on the train and
// validation splits (prompt hash) and scored on the held-out test split;
// it must need fewer strong-model calls than random routing to recover 80%
// of the weak-to-strong quality gap (RouteLLM's CPT(80%)) on both data sets.
// That is a property of the data and the method, deterministic for a fixed
// seed. The run is kept small for the ASan build: one label (--label
// needed, the one validation picks on both sets anyway) and, for MMLU, one
// shuffle (--bags 1). Also: --help, bad options, the JSON/CSV outputs, model-file
// refusal, and the --bench mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from '../lib/harness.mjs';

const run = promisify(execFile);
const SHARED = process.env.CG_SHARED_DIR || join(ROOT, '..', 'shared');
const DATA = join(SHARED, 'data');
const haveData = existsSync(join(DATA, 'routellm', 'gsm8k_responses.csv'));
let dir;

const cg = (args, opts = {}) =>
  run(BIN, args, { maxBuffer: 64 << 20, timeout: 240000, ...opts });

// exit code and output of a command expected to fail
async function fails(args) {
  try {
    await cg(args);
  } catch (e) {
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
  assert.fail(`costgate ${args.join(' ')} succeeded`);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cg-tier-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('--help and bad options', async () => {
  for (const cmd of ['tier-train', 'tier-eval']) {
    const { stdout } = await cg([cmd, '--help']);
    assert.match(stdout, new RegExp(`usage: costgate ${cmd}`));
    assert.match(stdout, /--datasets/);
    const bad = await fails([cmd, '--no-such-option']);
    assert.equal(bad.code, 2);
    const badval = await fails([cmd, '--subsample', 'many']);
    assert.equal(badval.code, 2);
  }
  const { stdout } = await cg(['--help']);
  assert.match(stdout, /tier-train/);
  assert.match(stdout, /tier-eval/);
  const nodata = await fails(['tier-eval', '--data', join(dir, 'nowhere')]);
  assert.equal(nodata.code, 1);
  assert.match(nodata.out, /data directory not found/);
});

test('learned router beats random routing at CPT(80%) on held-out MMLU and GSM8K',
  { skip: !haveData && 'no ../shared/data' }, async () => {
    const models = join(dir, 'models');
    // MMLU with one shuffle (the big set: time under ASan), GSM8K with the
    // default four (small, and its 383 held-out prompts make one shuffle noisy).
    const train = await cg(['tier-train', '--data', DATA, '--datasets', 'mmlu',
      '--out-dir', models, '--label', 'needed', '--bags', '1']);
    assert.match(train.stdout, /mmlu: \d+ train \/ \d+ validation prompts/);
    const train2 = await cg(['tier-train', '--data', DATA, '--datasets', 'gsm8k',
      '--out-dir', models, '--label', 'needed']);
    assert.match(train2.stdout, /chosen: label needed, L2 /);
    assert.deepEqual(readdirSync(models).sort(), ['gsm8k.model', 'mmlu.model']);
    const head = readFileSync(join(models, 'gsm8k.model'), 'utf8').split('\n');
    assert.equal(head[0], 'costgate-route-model 1');
    assert.match(readFileSync(join(models, 'gsm8k.model'), 'utf8'), /\nchecksum [0-9a-f]{16}\n$/);

    const json = join(dir, 'out.json');
    const csv = join(dir, 'out.csv');
    const ev = await cg(['tier-eval', '--data', DATA, '--datasets', 'mmlu,gsm8k',
      '--model-dir', models, '--json', json, '--csv', csv]);
    assert.match(ev.stdout, /CPT\(80%\)/);
    assert.match(ev.stdout, /cost-quality curve/);
    // The price source of each model is printed (neither is built in).
    assert.match(ev.stdout, /LiteLLM file entry "gpt-4-1106-preview"/);
    assert.match(ev.stdout, /LiteLLM file entry "mistral\/open-mixtral-8x7b"/);

    const res = JSON.parse(readFileSync(json, 'utf8'));
    for (const set of ['mmlu', 'gsm8k']) {
      const d = res.datasets[set];
      assert.ok(d, `${set} in the JSON`);
      // Scored on the test split only: about 30% of the rows.
      const total = set === 'mmlu' ? 14042 : 1319;
      assert.ok(d.n > total * 0.25 && d.n < total * 0.35, `${set}: ${d.n} held-out rows`);
      assert.ok(d.q_strong > d.q_weak, `${set}: GPT-4 beats Mixtral`);
      const { learned, random, oracle } = d;
      assert.ok(learned.cpt80 < random.cpt80,
        `${set}: learned CPT(80%) ${learned.cpt80} must be below random ${random.cpt80}`);
      assert.ok(learned.apgr > random.apgr, `${set}: APGR ${learned.apgr} vs ${random.apgr}`);
      // Random routing's expectation is CPT(x) = x and APGR = 0.5.
      assert.ok(Math.abs(random.cpt80 - 0.8) < 0.06, `${set}: random CPT(80%) ${random.cpt80}`);
      assert.ok(Math.abs(random.apgr - 0.5) < 0.04, `${set}: random APGR ${random.apgr}`);
      // The oracle bounds every router.
      assert.ok(oracle.cpt80 < learned.cpt80 && oracle.apgr > learned.apgr);
      assert.ok(learned.cost_at_cpt80 > 0 && learned.cost_at_cpt80 < 1);
    }
    // The CSV holds every curve point; the first point is all-weak, the
    // last all-strong, for each policy.
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(rows[0], 'dataset,policy,point,share,quality,pgr,cost_usd');
    const learned = rows.filter((r) => r.startsWith('gsm8k,learned,')).map((r) => r.split(','));
    assert.equal(Number(learned[0][3]), 0);
    assert.equal(Number(learned[0][5]), 0);
    assert.equal(Number(learned.at(-1)[3]), 1);
    assert.equal(Number(learned.at(-1)[5]), 1);

    // A damaged model file is refused, naming the file and the reason.
    const text = readFileSync(join(models, 'gsm8k.model'), 'utf8');
    writeFileSync(join(models, 'gsm8k.model'), text.replace('\nw ', '\nw 1'));
    const bad = await fails(['tier-eval', '--data', DATA, '--datasets', 'gsm8k',
      '--model-dir', models]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /gsm8k\.model: checksum mismatch/);
  });

test('--bench times the classifier on the Arena-Hard prompts',
  { skip: !existsSync(join(DATA, 'arena-hard')) && 'no arena-hard data' }, async () => {
    const { stdout } = await cg(['tier-eval', '--bench', '--data', DATA, '--rounds', '1']);
    assert.match(stdout, /Arena-Hard prompts/);
    assert.match(stdout, /classify +\d+ ns \(/);
  });
