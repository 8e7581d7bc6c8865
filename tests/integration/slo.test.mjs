// slo: cost SLOs with multi-window burn-rate alerts and the cheap-tier
// fallback (issue 4), on synthetic traffic driven by the test clock.
//
// SLO buckets are keyed by the gateway's clock at settle time, so with
// COSTGATE_TEST_CLOCK=1 each request lands in the minute the test set, and
// POST /admin/test/clock evaluates the SLOs at once (webhooks are delivered
// before it answers). The main gateway's own evaluator runs only every
// 10 min of real time, i.e. never during this file: every evaluation is a
// clock step, so event times, burn rates and the hold-down are exact. A
// second gateway evaluates every 100 ms on its own (no clock steps) and has a
// slow webhook, which must not stall requests.
//
// Burn rates are recomputed here from the ledger's costs with the documented
// formulas (docs/budgets.md) and compared to the milli-ratios the webhook,
// /metrics and GET /admin/budgets report.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, ADMIN_KEY, cleanup, sleep } from '../lib/harness.mjs';

const MIN = 60000;
const AVG_TARGET = 100000;   // $0.0001 per query
const AVG_SLOW = 1600;       // alert_threshold / target = 0.00016 / 0.0001
const DAILY_TARGET = 10000000; // $0.01 per day
const HOLD_DOWN = 10 * MIN;

let mock, gw, hook, hooks = [];
let gwR, hookR, hooksR = [], hookRDelay = 0, hookRArrived = null; // the runner gateway
let T0;                       // minute-aligned start of the synthetic time
const records = []; // {segment, minute, cost} per billed request, in order

before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      // the evaluation saw every request settled so far (the main gateway
      // evaluates only at clock steps, never during a request)
      hooks.push({ path: req.url, type: req.headers['content-type'], body: JSON.parse(body), seen: records.length });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  hookR = http.createServer((req, res) => {
    let body = '';
    if (hookRArrived) hookRArrived();
    req.on('data', (d) => { body += d; });
    req.on('end', () => setTimeout(() => {
      hooksR.push(JSON.parse(body));
      res.writeHead(200);
      res.end('ok');
    }, hookRDelay));
  });
  await new Promise((r) => hookR.listen(0, '127.0.0.1', r));
  gw = await startGateway({
    mockPort: mock.port, env: { COSTGATE_TEST_CLOCK: '1' },
    extra: `
slo_webhook: "http://127.0.0.1:${hook.address().port}/hook"
slo_eval_interval_ms: 600000
fallback_models:
  openai: gpt-4o-mini
  anthropic: claude-haiku-4-5
slos:
  - name: avg_cost_per_query
    target: 0.0001
    window: 7d
    alert_threshold: 0.00016
    segment: seg1
    fallback: true
    hold_down: 10m
  - name: daily_cost_total
    target: 0.01
    window: 1d
    segment: batch
`,
  });
  gwR = await startGateway({
    mockPort: mock.port, env: { COSTGATE_TEST_CLOCK: '1' },
    extra: `
slo_webhook: "http://127.0.0.1:${hookR.address().port}/r"
slo_eval_interval_ms: 100
slos:
  - name: daily_cost_total
    target: 0.01
`,
  });
  T0 = (Math.floor(Date.now() / MIN) + 1) * MIN;
});
after(async () => {
  await gw.stop();
  await gwR.stop();
  await mock.close();
  await new Promise((r) => hook.close(r));
  await new Promise((r) => hookR.close(r));
  cleanup(gw.dir);
  cleanup(gwR.dir);
});

// --- helpers -------------------------------------------------------------------

const admin = (path, init = {}) => fetch(gw.adminUrl + path, {
  ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
});
let now = 0;
async function clock(ms) {
  const res = await admin('/admin/test/clock', { method: 'POST', body: JSON.stringify({ now_ms: ms }) });
  assert.equal(res.status, 200);
  now = ms;
  return res.json();
}
const slo = async (name) => (await (await admin('/admin/budgets')).json()).slos.find((s) => s.name === name);
async function metric(series) {
  const text = await (await admin('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : line.slice(series.length + 1);
}
const milli = (v) => `${Math.floor(v / 1000)}.${String(v % 1000).padStart(3, '0')}`;

const OAI = { path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEY}` } };
const ANT = { path: '/v1/messages', headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' } };

// One request at the current test clock; its cost is recorded for the
// segment's burn-rate arithmetic.
async function call(api, body, segment = 'seg1') {
  const res = await fetch(gw.url + api.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...api.headers, 'x-costgate-segment': segment },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const id = res.headers.get('x-costgate-request-id');
  const row = ledgerRows(gw.ledger, `request_id='${id}'`)[0];
  records.push({ segment, minute: Math.floor(now / MIN), cost: row.cost_total });
  return { res, row, headers: res.headers };
}
const cheap = () => call(OAI, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'cheap q' }] });
const pricey = (segment = 'seg1', words = 400) =>
  call(OAI, { model: 'gpt-4o', messages: [{ role: 'user', content: `pricey [[mock:words=${words}]]` }] }, segment);

// The gateway's burn rate in milli, from the recorded costs (the first
// `seen` requests): minute buckets over the window ending at nowMs (whole
// minutes, at most a day).
function burn(segment, nowMs, windowMs, kind, target, seen = records.length) {
  const nowMin = Math.floor(nowMs / MIN);
  const nmin = Math.max(1, Math.min(1440, Math.floor(windowMs / MIN)));
  let cost = 0n, count = 0n;
  for (const r of records.slice(0, seen)) {
    if (r.segment === segment && r.minute > nowMin - nmin && r.minute <= nowMin) { cost += BigInt(r.cost); count++; }
  }
  if (kind === 'avg') return count === 0n ? 0 : Number((cost * 1000n) / (count * BigInt(target)));
  return Number((cost * 1000n * 86400000n) / (BigInt(nmin) * BigInt(MIN) * BigInt(target)));
}
const PAIRS = { fast: [60 * MIN, 5 * MIN], slow: [360 * MIN, 30 * MIN] };

const evs = (slo, event) => hooks.filter((h) => h.body.slo === slo && (!event || h.body.event === event));

function checkHook(h, { slo, segment, kind, target, slowFactor }) {
  assert.equal(h.path, '/hook');
  assert.equal(h.type, 'application/json');
  const b = h.body;
  assert.deepEqual(Object.keys(b), ['source', 'event', 'slo', 'segment', 'pair', 'burn_rate_long_milli',
    'burn_rate_short_milli', 'factor_milli', 'at_ms']);
  assert.equal(b.source, 'costgate');
  assert.equal(b.slo, slo);
  assert.equal(b.segment, segment);
  const pair = b.event.startsWith('fallback') ? 'fast' : b.pair;
  assert.equal(b.pair, b.event.startsWith('fallback') ? '' : pair);
  assert.equal(b.factor_milli, pair === 'fast' ? 2000 : slowFactor);
  assert.equal(b.burn_rate_long_milli, burn(segment, b.at_ms, PAIRS[pair][0], kind, target, h.seen), `${b.event} long`);
  assert.equal(b.burn_rate_short_milli, burn(segment, b.at_ms, PAIRS[pair][1], kind, target, h.seen), `${b.event} short`);
  if (b.event === 'alert_fired') {
    assert.ok(b.burn_rate_long_milli >= b.factor_milli && b.burn_rate_short_milli >= b.factor_milli);
  }
  if (b.event === 'alert_cleared') {
    assert.ok(b.burn_rate_long_milli < b.factor_milli || b.burn_rate_short_milli < b.factor_milli);
  }
}
const AVG = { slo: 'avg_cost_per_query', segment: 'seg1', kind: 'avg', target: AVG_TARGET, slowFactor: AVG_SLOW };
const DAILY = { slo: 'daily_cost_total', segment: 'batch', kind: 'daily', target: DAILY_TARGET, slowFactor: 1000 };

async function assertFallback(on) {
  // OpenAI
  let n0 = mock.requests.length;
  const o = await call(OAI, { model: 'gpt-4o', messages: [{ role: 'user', content: 'which model?' }] });
  assert.equal(mock.requests[n0].body.model, on ? 'gpt-4o-mini' : 'gpt-4o');
  assert.equal(o.headers.get('x-costgate-model'), on ? 'gpt-4o-mini' : 'gpt-4o');
  assert.equal(o.headers.get('x-costgate-downgraded-from'), on ? 'gpt-4o' : null);
  assert.equal(o.headers.get('x-costgate-budget-action'), on ? 'slo_fallback:gpt-4o->gpt-4o-mini' : null);
  assert.equal(o.row.model_requested, 'gpt-4o');
  assert.equal(o.row.model_served, on ? 'gpt-4o-mini' : 'gpt-4o');
  if (on) {
    assert.equal(o.row.cost_total, o.row.tok_input * 150 + o.row.tok_output * 600);
    assert.equal(o.row.baseline_cost, o.row.tok_input * 2500 + o.row.tok_output * 10000);
  }
  // Anthropic
  n0 = mock.requests.length;
  const a = await call(ANT, { model: 'claude-opus-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'which model?' }] });
  assert.equal(mock.requests[n0].body.model, on ? 'claude-haiku-4-5' : 'claude-opus-4-5');
  assert.equal(a.headers.get('x-costgate-model'), on ? 'claude-haiku-4-5' : 'claude-opus-4-5');
  assert.equal(a.headers.get('x-costgate-budget-action'), on ? 'slo_fallback:claude-opus-4-5->claude-haiku-4-5' : null);
  const st = await slo('avg_cost_per_query');
  assert.equal(st.fallback, on);
  assert.equal(await metric('costgate_slo_fallback{slo="avg_cost_per_query",segment="seg1"}'), on ? '1' : '0');
}

// --- avg_cost_per_query: alert, fallback, clear, hold-down ---------------------------

test('cheap traffic: burn rates below target, no alert, no webhook', async () => {
  for (let m = 0; m < 5; m++) {
    await clock(T0 + m * MIN);
    await cheap();
    await cheap();
  }
  const st = await clock(T0 + 5 * MIN);
  const s = st.slos.find((x) => x.name === 'avg_cost_per_query');
  assert.equal(s.segment, 'seg1');
  assert.equal(s.burn_fast_long, milli(burn('seg1', now, PAIRS.fast[0], 'avg', AVG_TARGET)));
  assert.equal(s.burn_fast_short, milli(burn('seg1', now, PAIRS.fast[1], 'avg', AVG_TARGET)));
  assert.equal(s.burn_slow_long, milli(burn('seg1', now, PAIRS.slow[0], 'avg', AVG_TARGET)));
  assert.ok(burn('seg1', now, PAIRS.fast[0], 'avg', AVG_TARGET) < 1000);
  assert.deepEqual([s.fast_alert, s.slow_alert, s.fallback], [false, false, false]);
  assert.equal(hooks.length, 0);
  assert.equal(await metric('costgate_slo_alert{slo="avg_cost_per_query",segment="seg1",pair="fast"}'), '0');
  assert.equal(await metric('costgate_slo_burn_rate{slo="avg_cost_per_query",segment="seg1",window="fast_long"}'), s.burn_fast_long);
  await assertFallback(false);
});

test('expensive traffic: both window pairs fire, webhook and /metrics, fallback engages', async () => {
  hooks.length = 0;
  const x = await pricey(); // at minute 5
  assert.equal(x.headers.get('x-costgate-model'), 'gpt-4o');
  assert.equal(hooks.length, 0, 'nothing until the next evaluation');
  await clock(T0 + 6 * MIN);
  const fired = evs('avg_cost_per_query', 'alert_fired');
  assert.deepEqual(fired.map((h) => h.body.pair).sort(), ['fast', 'slow']);
  const on = evs('avg_cost_per_query', 'fallback_on');
  assert.equal(on.length, 1);
  assert.equal(hooks.length, 3);
  for (const h of hooks) {
    assert.equal(h.body.at_ms, T0 + 6 * MIN);
    checkHook(h, AVG);
  }
  assert.equal(await metric('costgate_slo_alert{slo="avg_cost_per_query",segment="seg1",pair="fast"}'), '1');
  assert.equal(await metric('costgate_slo_alert{slo="avg_cost_per_query",segment="seg1",pair="slow"}'), '1');
  const s = await slo('avg_cost_per_query');
  assert.deepEqual([s.fast_alert, s.slow_alert, s.fallback], [true, true, true]);
  assert.equal(s.burn_slow_short, milli(burn('seg1', now, PAIRS.slow[1], 'avg', AVG_TARGET)));
  const fb0 = Number(await metric('costgate_budget_actions_total{scope="slo",action="fallback"}') || 0);
  await assertFallback(true);
  assert.equal(Number(await metric('costgate_budget_actions_total{scope="slo",action="fallback"}')), fb0 + 2);
  // another segment is not affected
  const b = await pricey('batch', 8);
  assert.equal(b.headers.get('x-costgate-model'), 'gpt-4o');
});

test('cheap traffic again: alerts clear, the fallback holds for hold_down, then releases once', async () => {
  let m = 6;
  // six cheap queries a minute until both pairs have cleared
  for (; m < 20; m++) {
    if (m > 6) await clock(T0 + m * MIN);
    if (evs('avg_cost_per_query', 'alert_cleared').length === 2) break;
    for (let i = 0; i < 6; i++) await cheap();
  }
  const cleared = evs('avg_cost_per_query', 'alert_cleared');
  assert.deepEqual(cleared.map((h) => h.body.pair).sort(), ['fast', 'slow'], 'both pairs cleared');
  for (const h of cleared) checkHook(h, AVG);
  const clearedAt = Math.max(...cleared.map((h) => h.body.at_ms));
  assert.equal(clearedAt, now);
  const lastAlert = clearedAt - MIN; // the evaluation before still had a pair alerting
  assert.equal(await metric('costgate_slo_alert{slo="avg_cost_per_query",segment="seg1",pair="fast"}'), '0');
  assert.equal(await metric('costgate_slo_alert{slo="avg_cost_per_query",segment="seg1",pair="slow"}'), '0');
  assert.equal(evs('avg_cost_per_query', 'fallback_off').length, 0, 'no release at the clear');
  await assertFallback(true); // hysteresis: still on with the alerts clear

  // hold-down: one cheap query a minute; the fallback stays on until
  // hold_down after the last alerting evaluation, then goes off exactly once
  for (m++; m < 40; m++) {
    await clock(T0 + m * MIN);
    if (evs('avg_cost_per_query', 'fallback_off').length) break;
    assert.equal((await slo('avg_cost_per_query')).fallback, true, `still on at minute ${m}`);
    await cheap();
  }
  const off = evs('avg_cost_per_query', 'fallback_off');
  assert.equal(off.length, 1);
  checkHook(off[0], AVG);
  assert.equal(off[0].body.at_ms, lastAlert + HOLD_DOWN, 'released exactly hold_down after the last alert');
  assert.equal(evs('avg_cost_per_query', 'alert_fired').length, 2, 'no flapping: no new alert');
  assert.equal(evs('avg_cost_per_query', 'fallback_on').length, 1, 'no flapping: one fallback period');
  await assertFallback(false);
  const events = {};
  for (const e of ['alert_fired', 'alert_cleared', 'fallback_on', 'fallback_off']) {
    events[e] = Number(await metric(`costgate_slo_events_total{event="${e}"}`));
  }
  assert.deepEqual(events, { alert_fired: 2, alert_cleared: 2, fallback_on: 1, fallback_off: 1 });
  assert.equal(Number(await metric('costgate_slo_webhook_total{result="ok"}')), hooks.length);
  assert.equal(Number(await metric('costgate_slo_webhook_total{result="failed"}')), 0);
});

// --- daily_cost_total -----------------------------------------------------------------

test('daily_cost_total: spend rate against target per day; fast pair fires and clears, no fallback', async () => {
  hooks.length = 0;
  const T1 = T0 + 120 * MIN; // the avg SLO's traffic is out of every short window
  await clock(T1);
  await pricey('batch', 200);
  await clock(T1); // evaluate at the same time
  const fired = evs('daily_cost_total', 'alert_fired');
  assert.equal(fired.length, 1);
  assert.equal(fired[0].body.pair, 'fast');
  assert.equal(fired[0].body.at_ms, T1);
  checkHook(fired[0], DAILY);
  // the slow pair (6 h / 30 min at alert_threshold / target = 1.0) stays quiet
  assert.ok(burn('batch', T1, PAIRS.slow[0], 'daily', DAILY_TARGET) < 1000);
  const s = await slo('daily_cost_total');
  assert.deepEqual([s.fast_alert, s.slow_alert, s.fallback], [true, false, false]);
  assert.equal(s.burn_fast_long, milli(burn('batch', T1, PAIRS.fast[0], 'daily', DAILY_TARGET)));
  assert.equal(s.burn_fast_short, milli(burn('batch', T1, PAIRS.fast[1], 'daily', DAILY_TARGET)));
  assert.equal(s.burn_slow_long, milli(burn('batch', T1, PAIRS.slow[0], 'daily', DAILY_TARGET)));
  assert.equal(await metric('costgate_slo_burn_rate{slo="daily_cost_total",segment="batch",window="fast_short"}'), s.burn_fast_short);
  // no fallback for this SLO: the batch segment keeps its model
  const b = await pricey('batch', 8);
  assert.equal(b.headers.get('x-costgate-model'), 'gpt-4o');
  // five minutes later the short window is empty: cleared
  await clock(T1 + 4 * MIN);
  assert.equal(evs('daily_cost_total', 'alert_cleared').length, 0, 'still in the 5 min window');
  await clock(T1 + 5 * MIN);
  const cleared = evs('daily_cost_total', 'alert_cleared');
  assert.equal(cleared.length, 1);
  assert.equal(cleared[0].body.burn_rate_short_milli, 0);
  checkHook(cleared[0], DAILY);
  assert.deepEqual(hooks.map((h) => h.body.event), ['alert_fired', 'alert_cleared'], 'no fallback events');
});

// --- the evaluator thread and a slow webhook ------------------------------------------------

test('the evaluator runs every slo_eval_interval_ms on its own; a slow webhook does not stall requests', async () => {
  const adminR = (path, body) => fetch(gwR.adminUrl + path, {
    method: body ? 'POST' : 'GET', body: body && JSON.stringify(body),
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
  });
  const sendR = async (content, model) => {
    const res = await fetch(gwR.url + OAI.path, {
      method: 'POST', headers: { 'content-type': 'application/json', ...OAI.headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
    });
    await res.text();
    return res;
  };
  const T = T0 + 300 * MIN;
  assert.equal((await adminR('/admin/test/clock', { now_ms: T })).status, 200);
  assert.equal(hooksR.length, 0);
  hookRDelay = 4000;
  let arrived = false;
  const arrival = new Promise((r) => { hookRArrived = () => { arrived = true; r(); }; });
  // $0.002 at once against $0.01 a day: the fast pair fires at the runner's
  // next evaluation, with no clock step
  assert.equal((await sendR('pricey [[mock:words=200]]', 'gpt-4o')).status, 200);
  await Promise.race([arrival, sleep(3000)]);
  assert.ok(arrived, 'the evaluator fired on its own');
  // the webhook is hanging now: requests must not wait for it
  // (the receiver answers the webhook after 4 s: a request answered before
  // that did not wait for it; no wall-clock bound, CI is noisy)
  const r = await sendR('cheap q', 'gpt-4o-mini');
  assert.equal(r.status, 200);
  assert.equal(hooksR.length, 0, 'the webhook is still pending');
  for (let i = 0; i < 500 && hooksR.length === 0; i++) await sleep(20);
  assert.equal(hooksR.length, 1);
  assert.equal(hooksR[0].event, 'alert_fired');
  assert.equal(hooksR[0].slo, 'daily_cost_total');
  assert.equal(hooksR[0].segment, '');
  assert.equal(hooksR[0].pair, 'fast');
  assert.equal(hooksR[0].at_ms, T);
  hookRArrived = null;
  hookRDelay = 0;
  // counted once the gateway has read the (late) answer
  let m = '';
  for (let i = 0; i < 100 && !/costgate_slo_webhook_total\{result="ok"\} 1\n/.test(m); i++) {
    if (i) await sleep(20);
    m = await (await adminR('/metrics')).text();
  }
  assert.match(m, /costgate_slo_webhook_total\{result="ok"\} 1\n/);
  assert.match(m, /costgate_slo_alert\{slo="daily_cost_total",segment="",pair="fast"\} 1\n/);
});
