// tiering: routing to the cheapest tier that will do, the confidence
// cascade (every attempt a ledger row), failover to another provider before
// the first byte, and the bandit's state persisted across a restart. Real
// binary, mock provider, both APIs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock } from '../mock/provider.mjs';
import { startGateway, writeConfig, ledgerRows, KEY, KEY_PLAIN, cleanup } from '../lib/harness.mjs';

const TIERING = (extra = '') => `
tiering:
  default_tier: medium
  routable_keys: [test]
  tiers:
    small: {openai: gpt-4o-mini, anthropic: claude-haiku-4-5}
    medium: {openai: gpt-4o, anthropic: claude-sonnet-4-5}
    large: {openai: gpt-4.1, anthropic: claude-opus-4-1}
  rules:
    - {intent: small_talk, tier: small}
    - {intent: deep, tier: large}
  cascade: {enabled: true, min_mean_logprob: "-1.0"}
${extra}`;

let mock, gw;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port, extra: TIERING('  bandit: {enabled: false}') });
});
after(async () => {
  await gw.stop();
  await mock.close();
  cleanup(gw.dir);
});

const chat = (g, body, headers = {}, key = KEY) => fetch(`${g.url}/v1/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
  body: JSON.stringify(body),
});
const messages = (g, body, headers = {}) => fetch(`${g.url}/v1/messages`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers },
  body: JSON.stringify(body),
});
const rowsOf = (g, id) => ledgerRows(g.ledger, `request_id='${id}'`).sort((a, b) => a.attempt - b.attempt);
const upstreamFor = (tag) => mock.requests.filter((q) => JSON.stringify(q.body || {}).includes(tag));

test('costgate/auto with a small_talk intent goes to the small tier; baseline is the default tier', async () => {
  const tag = `hello-${Date.now()}`;
  const res = await chat(gw, { model: 'costgate/auto', messages: [{ role: 'user', content: tag }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('x-costgate-tier'), 'small');
  assert.equal(res.headers.get('x-costgate-model'), 'gpt-4o-mini');
  const body = await res.json();
  assert.equal(body.model, 'gpt-4o-mini');
  assert.equal(body.choices[0].logprobs, null, 'logprobs the gateway asked for are not passed on');
  const up = upstreamFor(tag);
  assert.equal(up.length, 1);
  assert.equal(up[0].body.model, 'gpt-4o-mini');
  assert.equal(up[0].body.logprobs, true, 'the cascade asked for logprobs');
  const rows = rowsOf(gw, res.headers.get('x-costgate-request-id'));
  assert.equal(rows.length, 1);
  const r = rows[0];
  assert.equal(r.model_requested, 'costgate/auto');
  assert.equal(r.model_served, 'gpt-4o-mini');
  assert.equal(r.tier, 'small');
  assert.equal(r.cost_total, r.tok_input * 150 + r.tok_output * 600);
  assert.equal(r.baseline_cost, r.tok_input * 2500 + r.tok_output * 10000, 'baseline: gpt-4o prices');
  assert.match(r.note, /tier:small\(rule0\)/);
});

test('no rule and no classifier signal: the default tier', async () => {
  const res = await chat(gw, { model: 'costgate/auto', messages: [{ role: 'user', content: 'plain question' }] });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-costgate-tier'), 'medium');
  assert.equal(res.headers.get('x-costgate-model'), 'gpt-4o');
});

test('an explicit model is kept for a key that may not be routed, re-routed for one that may', async () => {
  const kept = await chat(gw, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'keep me' }] },
    { 'x-costgate-intent': 'small_talk' }, KEY_PLAIN);
  assert.equal(kept.status, 200);
  assert.equal(kept.headers.get('x-costgate-model'), 'gpt-4.1');
  assert.equal(kept.headers.get('x-costgate-tier'), 'large', 'the tier listing the model');
  const routed = await chat(gw, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'route me' }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(routed.status, 200);
  assert.equal(routed.headers.get('x-costgate-model'), 'gpt-4o-mini');
  const r = rowsOf(gw, routed.headers.get('x-costgate-request-id'))[0];
  assert.equal(r.model_requested, 'gpt-4.1');
  assert.equal(r.baseline_cost, r.tok_input * 2000 + r.tok_output * 8000, 'baseline: the requested model');
});

test('low logprobs escalate tier by tier; every attempt is a ledger row', async () => {
  const tag = `unsure-${Date.now()}`;
  const res = await chat(gw, { model: 'costgate/auto', messages: [{ role: 'user', content: `${tag} [[mock:logprob=-3]]` }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.model, 'gpt-4.1', 'the answer comes from the last attempt');
  assert.equal(res.headers.get('x-costgate-tier'), 'large');
  const up = upstreamFor(tag);
  assert.deepEqual(up.map((q) => q.body.model), ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1']);
  assert.equal(up[2].body.logprobs, undefined, 'the last attempt is sent as the client sent it');
  const rows = rowsOf(gw, res.headers.get('x-costgate-request-id'));
  assert.deepEqual(rows.map((r) => [r.attempt, r.tier, r.status]),
    [[1, 'small', 'escalated'], [2, 'medium', 'escalated'], [3, 'large', 'ok']]);
  for (const r of rows) assert.ok(r.cost_total > 0, 'escalated attempts were paid for');
  assert.match(rows[0].note, /escalate:logprob_mean:-3\.00/);
  const total = rows.reduce((s, r) => s + r.cost_total, 0);
  assert.ok(total > rows[2].cost_total, 'the cost of escalation is visible');
});

test('a truncated answer (finish length) escalates; Anthropic max_tokens too', async () => {
  const tag = `trunc-${Date.now()}`;
  const res = await chat(gw, { model: 'costgate/auto', max_tokens: 3, messages: [{ role: 'user', content: `${tag} [[mock:words=40]]` }] },
    { 'x-costgate-intent': 'deep' });
  assert.equal(res.status, 200);
  // deep -> large: no tier above, so no cascade
  assert.equal(upstreamFor(tag).length, 1);
  const tag2 = `trunc2-${Date.now()}`;
  const res2 = await messages(gw, { model: 'costgate/auto', max_tokens: 3, messages: [{ role: 'user', content: `${tag2} [[mock:words=40]]` }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(res2.status, 200);
  const up = upstreamFor(tag2);
  assert.deepEqual(up.map((q) => q.body.model), ['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-1']);
  const rows = rowsOf(gw, res2.headers.get('x-costgate-request-id'));
  assert.deepEqual(rows.map((r) => r.status), ['escalated', 'escalated', 'ok']);
  assert.match(rows[0].note, /escalate:finish:max_tokens/);
});

test('a confident answer is not escalated', async () => {
  const tag = `sure-${Date.now()}`;
  const res = await messages(gw, { model: 'costgate/auto', max_tokens: 200, messages: [{ role: 'user', content: tag }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(res.status, 200);
  assert.equal(upstreamFor(tag).length, 1);
  assert.equal(res.headers.get('x-costgate-model'), 'claude-haiku-4-5');
});

test('streams are routed but not cascaded (cascade.stream: off, the default)', async () => {
  const tag = `stream-${Date.now()}`;
  const res = await chat(gw, { model: 'costgate/auto', stream: true, messages: [{ role: 'user', content: `${tag} [[mock:logprob=-3]]` }] },
    { 'x-costgate-intent': 'small_talk' });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /\[DONE\]/);
  const up = upstreamFor(tag);
  assert.equal(up.length, 1);
  assert.equal(up[0].body.model, 'gpt-4o-mini');
  assert.equal(up[0].body.logprobs, undefined);
});

test('failover: a 503 before the first byte is retried on the failover provider; both attempts in the ledger', async () => {
  // the primary always answers 503 (overloaded); the backup is the mock
  let primaryHits = 0;
  const primary = http.createServer((q, s) => {
    primaryHits++;
    q.resume();
    q.on('end', () => {
      s.writeHead(503, { 'content-type': 'application/json' });
      s.end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error', code: null, param: null } }));
    });
  });
  await new Promise((r) => primary.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'costgate-failover-'));
  const ledger = join(dir, 'ledger.db');
  const path = writeConfig(dir, { mockPort: primary.address().port, ledger });
  const cfg = readFileSync(path, 'utf8').replace('  - name: anthropic\n',
    `    failover: backup\n  - name: backup\n    api: openai\n    base_url: "http://127.0.0.1:${mock.port}"\n    api_key_env: CG_TEST_OPENAI_KEY\n    models: ["gpt-*"]\n  - name: anthropic\n`);
  writeFileSync(path, cfg);
  const g = await startGateway({ configPath: path, dir, ledger });
  try {
    const tag = `fo-${Date.now()}`;
    const res = await chat(g, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: tag }] });
    assert.equal(res.status, 200, 'answered by the backup');
    const body = await res.json();
    assert.match(body.choices[0].message.content, /Mock answer/);
    assert.equal(primaryHits, 1);
    const rows = rowsOf(g, res.headers.get('x-costgate-request-id'));
    assert.deepEqual(rows.map((r) => [r.attempt, r.provider, r.status, r.upstream_status]),
      [[1, 'openai', 'upstream_error', 503], [2, 'backup', 'ok', 200]]);
    assert.equal(rows[0].cost_total, 0, 'a 503 is not billed');
    assert.ok(rows[1].cost_total > 0);
    assert.match(rows[1].note, /failover:backup/);
    assert.equal(upstreamFor(tag).length, 1);
    // streams fail over the same way (nothing was sent to the client yet)
    const tag2 = `fo2-${Date.now()}`;
    const st = await chat(g, { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: tag2 }] });
    assert.equal(st.status, 200);
    assert.match(await st.text(), /\[DONE\]/);
    assert.equal(rowsOf(g, st.headers.get('x-costgate-request-id')).length, 2);
  } finally {
    await g.stop();
    primary.close();
    cleanup(dir);
  }
});

test('a learned router from costgate tier-train scores each prompt and picks the tier', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'costgate-learned-'));
  const bin = process.env.COSTGATE_BIN || join(process.cwd(), 'build', 'costgate');
  execFileSync(bin, ['tier-train', '--datasets', 'mmlu', '--subsample', '1500', '--out-dir', dir], { stdio: 'pipe' });
  const model = join(dir, 'mmlu.model');
  const extra = TIERING(`  bandit: {enabled: false}\n  learned: {model: "${model}", threshold: 0.5}`)
    .replace(/  rules:\n(    - .*\n)+/, '');
  const g = await startGateway({ mockPort: mock.port, extra, dir });
  try {
    for (const q of ['What is 2+2?', 'Prove that the halting problem is undecidable, step by step, with a rigorous diagonal argument.']) {
      const res = await chat(g, { model: 'costgate/auto', messages: [{ role: 'user', content: q }] });
      assert.equal(res.status, 200);
      const r = rowsOf(g, res.headers.get('x-costgate-request-id'))[0];
      const m = r.note.match(/tier:(\w+)\(learned:(0\.\d\d|1\.00)\)/);
      assert.ok(m, `the learned router decided: ${r.note}`);
      const p = Number(m[2]);
      assert.equal(m[1], p >= 0.5 ? 'medium' : 'small', 'below the threshold: the cheapest tier; above: the default');
    }
    // a model file that is not one: the gateway refuses to start, naming the field
    writeFileSync(model, 'garbage');
    await assert.rejects(startGateway({ mockPort: mock.port, extra, dir }), /tiering\.learned\.model/);
  } finally {
    await g.stop();
    cleanup(dir);
  }
});

test('a budget downgrade walks down the tiers until the request fits', async () => {
  const extra = TIERING('  bandit: {enabled: false}') +
    '\nbudgets:\n  default: {max_per_query_usd: "0.001", action: downgrade}\n';
  const g = await startGateway({ mockPort: mock.port, extra });
  try {
    const tag = `budget-${Date.now()}`;
    const res = await chat(g, { model: 'costgate/auto', max_tokens: 1000, messages: [{ role: 'user', content: tag }] },
      { 'x-costgate-intent': 'deep' });
    assert.equal(res.status, 200, await res.clone().text());
    // large (gpt-4.1, up to $0.008) and medium (gpt-4o, $0.01) do not fit $0.001; small does
    assert.equal(res.headers.get('x-costgate-model'), 'gpt-4o-mini');
    assert.equal(res.headers.get('x-costgate-tier'), 'small');
    const rows = rowsOf(g, res.headers.get('x-costgate-request-id'));
    assert.equal(rows.length, 1, 'a downgraded request is not escalated past the budget');
    assert.match(rows[0].note, /tier:large\(rule1\).*budget_downgrade:costgate\/auto->gpt-4o.*budget_downgrade:costgate\/auto->gpt-4o-mini/);
    assert.deepEqual(upstreamFor(tag).map((q) => q.body.model), ['gpt-4o-mini']);
  } finally {
    await g.stop();
    cleanup(g.dir);
  }
});

test('bad tiering config fails at start with file, line and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'costgate-badtier-'));
  try {
    const bad = [
      [TIERING().replace('tier: small}', 'tier: tiny}'), /tiering\.rules\[0\]\.tier: unknown tier "tiny"/],
      [TIERING().replace('large: {openai: gpt-4.1,', 'large: {openai: nope-model,'), /tiering\.tiers\.large\.openai: model "nope-model" is not served/],
      [TIERING().replace('routable_keys: [test]', 'routable_keys: [nobody]'), /tiering\.routable_keys\[0\]: names no key/],
      [TIERING().replace('min_mean_logprob: "-1.0"', 'min_mean_logprob: "high"'), /tiering\.cascade\.min_mean_logprob: must be a number/],
    ];
    for (const [extra, re] of bad) {
      const path = writeConfig(dir, { mockPort: 1, ledger: join(dir, 'l.db'), extra });
      let out = '';
      try {
        execFileSync(process.env.COSTGATE_BIN || join(process.cwd(), 'build', 'costgate'), ['config', 'check', path], { stdio: 'pipe' });
      } catch (e) {
        out = String(e.stderr);
      }
      assert.match(out, re);
      assert.match(out, /costgate\.yaml:\d+: /, 'names the file and line');
    }
  } finally {
    cleanup(dir);
  }
});
