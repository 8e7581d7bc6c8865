// cache_coalesce: identical concurrent misses make one upstream call.
//
// The mock holds the one upstream call (hold=NAME) until the gateway reports
// every other identical request waiting on it (GET /admin/cache/stats,
// coalescing.waits), so nothing here depends on timing. The requests spread
// over the gateway's two worker threads, streaming and not.
//  - N identical requests: exactly one upstream call, all N get the same
//    answer; N ledger rows: the leader's miss and N-1 hits labelled
//    "cache:coalesced", at zero cost with the leader's cost as baseline
//  - the leader fails: every waiter goes upstream itself
//  - a waiter whose bounded wait runs out goes upstream itself
//  - a no-cache request does not wait on a flight
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, expectedChatUsage, mockAnswer } from '../mock/provider.mjs';
import { startGateway, ledgerRows, cleanup, sleep } from '../lib/harness.mjs';
import { PRICE, OAI, ANT, uniq, sseEvents, call, stats, openaiStreamText, anthropicStreamText } from './cache_util.mjs';

const N = 8;

let mock, gw, gwShort;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port, workers: 2, extra: 'cache:\n  coalesce: {wait_ms: 60000}\n' });
  gwShort = await startGateway({ mockPort: mock.port, workers: 2, extra: 'cache:\n  coalesce: {wait_ms: 200}\n' });
});
after(async () => {
  await gw.stop();
  await gwShort.stop();
  await mock.close();
  cleanup(gw.dir);
  cleanup(gwShort.dir);
});

// Polls cond() until true (bounds a slow machine; asserts nothing about time).
async function until(cond, what, ms = 20000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

const held = (name) => mock.held()[name] || 0;
const chatBody = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });

test(`${N} identical concurrent requests make exactly one upstream call`, async () => {
  const text = uniq('coalesce me [[mock:hold=c1]]');
  const body = chatBody(text);
  const w0 = (await stats(gw)).coalescing.waits;
  const n0 = mock.requests.length;
  const ps = Array.from({ length: N }, (_, i) => call(gw, OAI, i % 2 ? { ...body, stream: true } : body));
  await until(async () => held('c1') === 1 && (await stats(gw)).coalescing.waits - w0 === N - 1,
    'the leader upstream and the others waiting');
  assert.equal(mock.requests.length - n0, 1);
  mock.release('c1');
  const rs = await Promise.all(ps);
  assert.equal(mock.requests.length - n0, 1, 'exactly one upstream call');
  const want = mockAnswer(text);
  for (const [i, r] of rs.entries()) {
    assert.equal(r.status, 200);
    const got = i % 2 ? openaiStreamText(sseEvents(r.text)).text : r.json.choices[0].message.content;
    assert.equal(got, want, `request ${i} got the leader's answer`);
  }
  const u = expectedChatUsage(body);
  const cost = u.prompt_tokens * PRICE['gpt-4o-mini'].input + u.completion_tokens * PRICE['gpt-4o-mini'].output;
  const ids = rs.map((r) => r.id);
  const rows = ledgerRows(gw.ledger, `request_id IN (${ids.map((i) => `'${i}'`).join(',')})`);
  assert.equal(rows.length, N, 'one row per request');
  const leaders = rows.filter((r) => r.cache === 'miss');
  assert.equal(leaders.length, 1);
  assert.equal(leaders[0].cost_total, cost);
  const waiters = rows.filter((r) => r.cache === 'exact');
  assert.equal(waiters.length, N - 1);
  for (const w of waiters) {
    assert.match(w.note, /cache:coalesced/);
    assert.equal(w.cost_total, 0);
    assert.equal(w.baseline_cost, cost, 'what the waiter would have cost');
    assert.equal(w.cache_src, leaders[0].request_id);
    assert.equal(w.status, 'ok');
  }
  const leaderRes = rs.find((r) => r.id === leaders[0].request_id);
  assert.equal(leaderRes.cache, 'miss');
  assert.equal(rs.filter((r) => r.cache === 'exact').length, N - 1);
  const st = await stats(gw);
  assert.ok(st.coalesced >= N - 1);
});

test('Anthropic requests coalesce the same way', async () => {
  const text = uniq('anthropic flight [[mock:hold=a1]]');
  const body = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: text }] };
  const w0 = (await stats(gw)).coalescing.waits;
  const n0 = mock.requests.length;
  const ps = Array.from({ length: 4 }, (_, i) => call(gw, ANT, i % 2 ? { ...body, stream: true } : body));
  await until(async () => held('a1') === 1 && (await stats(gw)).coalescing.waits - w0 === 3, 'waiters');
  mock.release('a1');
  const rs = await Promise.all(ps);
  assert.equal(mock.requests.length - n0, 1);
  for (const [i, r] of rs.entries()) {
    const got = i % 2 ? anthropicStreamText(sseEvents(r.text)).text : r.json.content[0].text;
    assert.equal(got, mockAnswer(text));
  }
});

test('the leader fails: every waiter goes upstream itself', async () => {
  const body = chatBody(uniq('leader fails [[mock:hold=c2,status=500]]'));
  const st0 = await stats(gw);
  const n0 = mock.requests.length;
  const ps = Array.from({ length: 4 }, () => call(gw, OAI, body));
  await until(async () => held('c2') === 1 && (await stats(gw)).coalescing.waits - st0.coalescing.waits === 3, 'waiters');
  mock.release('c2');
  const rs = await Promise.all(ps);
  assert.equal(mock.requests.length - n0, 4, 'each waiter made its own call');
  for (const r of rs) {
    assert.equal(r.status, 500);
    assert.equal(r.cache, 'miss');
  }
  const st1 = await stats(gw);
  assert.equal(st1.coalescing.leader_failed - st0.coalescing.leader_failed, 3);
  const rows = ledgerRows(gw.ledger, `request_id IN (${rs.map((r) => `'${r.id}'`).join(',')})`);
  assert.equal(rows.length, 4);
  assert.ok(rows.every((r) => r.status === 'upstream_error' && r.cache === 'miss'));
});

test('a waiter whose bounded wait runs out goes upstream itself', async () => {
  const body = chatBody(uniq('slow leader [[mock:hold=c3]]'));
  const st0 = await stats(gwShort);
  const n0 = mock.requests.length;
  const p1 = call(gwShort, OAI, body);
  await until(async () => held('c3') === 1, 'the leader upstream');
  const p2 = call(gwShort, OAI, body);
  // the waiter gives up after wait_ms and goes upstream: now both are held
  await until(async () => held('c3') === 2, 'the waiter upstream too');
  const st1 = await stats(gwShort);
  assert.equal(st1.coalescing.timeouts - st0.coalescing.timeouts, 1);
  mock.release('c3');
  const [r1, r2] = await Promise.all([p1, p2]);
  assert.equal(mock.requests.length - n0, 2);
  assert.equal(r1.status, 200);
  assert.equal(r2.status, 200);
  assert.equal(r2.cache, 'miss');
});

test('a no-cache request does not wait on a flight', async () => {
  const body = chatBody(uniq('fresh please [[mock:hold=c4]]'));
  const n0 = mock.requests.length;
  const p1 = call(gw, OAI, body);
  await until(async () => held('c4') === 1, 'the leader upstream');
  const p2 = call(gw, OAI, body, { headers: { 'cache-control': 'no-cache' } });
  await until(async () => held('c4') === 2, 'the no-cache request upstream');
  mock.release('c4');
  const [r1, r2] = await Promise.all([p1, p2]);
  assert.equal(mock.requests.length - n0, 2);
  assert.equal(r1.cache, 'miss');
  assert.equal(r2.cache, 'miss');
  assert.equal((await call(gw, OAI, body)).cache, 'exact');
});
