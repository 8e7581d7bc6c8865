// cache: the exact response cache through the real binary and the mock
// provider, adversarially (issue: exact response cache that cannot poison
// or leak).
//
//  - a hit serves the stored answer without an upstream call, in both APIs,
//    streamed or not (a streamed miss is stored too); headers; the hit's
//    ledger row: cache 'exact', zero cost, baseline = the stored usage at
//    today's price, the cache key and the request that wrote the entry
//  - partitions: two tenants never share an entry unless configured (a share
//    group), a persona (segment) partition, and every request part that can
//    change the answer changes the key (system prompt, prompt version,
//    context ids, model, sampling); the ignored ones do not
//  - TTL per intent and tenant against the injectable test clock;
//    cache-control no-store / no-cache; the temperature ceiling
//  - the write guard: errors, truncated, refused, tool-calling, cut,
//    broken-mid-stream, unmetered and deny-listed answers are never stored
//  - invalidation by tag (the "source changed" webhook), key, prompt
//    version, tenant; feedback (a thumbs down removes the entry that served
//    the request, recorded in the ledger; only the request's own tenant may
//    rate it)
//  - `costgate cache audit|stats|invalidate`
// Every request leaves exactly one ledger row.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startMock, expectedChatUsage, expectedMessagesUsage, mockAnswer, MOCK_REFUSAL } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, KEY_PLAIN, ADMIN_KEY, BIN, cleanup } from '../lib/harness.mjs';
import {
  PRICE, OAI, ANT, uniq, keyYaml, sseEvents, call, invalidate, stats, feedback, setClock,
  openaiStreamText, anthropicStreamText,
} from './cache_util.mjs';

const run = promisify(execFile);

const KEY_T3 = 'cg-test-key-cache-t3'; // tenant t3: shares entries with t1 (group "shared")
const KEY_T4 = 'cg-test-key-cache-t4'; // tenant t4: its own TTL

const CONFIG = `
cache:
  max_bytes: 4MiB
  max_temperature: 1.0
  partition_by: [segment]
  ttl:
    default: 3600
    by_intent: {knowledge_lookup: 86400, troubleshoot: 1800, small_talk: 0}
  tenants:
    t1: {share_group: shared}
    t3: {share_group: shared}
    t4: {ttl: {default: 60}}
  guard:
    max_bytes: 64KiB
    deny: ["forbidden phrase"]
`;

const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);

let mock, gw, requests = 0;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({
    mockPort: mock.port, extra: CONFIG, env: { COSTGATE_TEST_CLOCK: '1' }, ledgerConf: '  predict_every: 1',
    extraKeys: keyYaml('t3', KEY_T3, 't3', '    segment: seg1\n') + keyYaml('t4', KEY_T4, 't4'),
  });
  await setClock(gw, T0);
});
after(async () => {
  await gw.stop();
  await mock.close();
  cleanup(gw.dir);
});

async function send(api, body, opts) {
  requests++;
  return call(gw, api, body, opts);
}
const chatBody = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const msgBody = (content, extra = {}) => ({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content }], ...extra });
const row = (id) => {
  const rows = ledgerRows(gw.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1, `one ledger row for ${id}`);
  return rows[0];
};
// upstream calls made by fn
async function upstreamCalls(fn) {
  const n0 = mock.requests.length;
  await fn();
  return mock.requests.length - n0;
}

test('OpenAI: a miss is stored, the hit skips the provider, costs 0 and records its baseline', async () => {
  const body = chatBody(uniq('What is an exact cache?'));
  const n0 = mock.requests.length;
  const miss = await send(OAI, body);
  const hit = await send(OAI, body);
  assert.equal(mock.requests.length - n0, 1, 'one upstream call for two identical requests');
  assert.equal(miss.cache, 'miss');
  assert.equal(hit.status, 200);
  assert.equal(hit.cache, 'exact');
  assert.equal(hit.headers.get('x-costgate-cost-usd'), '0.000000000');
  assert.equal(hit.headers.get('x-costgate-cache-age'), '0');
  assert.equal(hit.headers.get('x-costgate-model'), 'gpt-4o-mini');
  assert.deepEqual(hit.json, miss.json, 'the stored answer, byte for byte the same JSON');
  const u = expectedChatUsage(body);
  const cost = u.prompt_tokens * PRICE['gpt-4o-mini'].input + u.completion_tokens * PRICE['gpt-4o-mini'].output;
  const m = row(miss.id), h = row(hit.id);
  assert.equal(m.cache, 'miss');
  assert.equal(m.cost_total, cost);
  assert.match(m.cache_key, /^[0-9a-f]{64}$/);
  assert.equal(h.cache, 'exact');
  assert.equal(h.status, 'ok');
  assert.equal(h.http_status, 200);
  assert.equal(h.upstream_status, 0);
  for (const c of ['cost_input', 'cost_output', 'cost_embedding', 'cost_total', 'tok_input', 'tok_output'])
    assert.equal(h[c], 0, c);
  // no budgets here: the input estimate is made before an upstream call, so
  // the miss predicts and the hit (no call) predicts nothing
  assert.ok(m.tok_input_predicted > 0, 'the miss records its prediction');
  assert.equal(h.tok_input_predicted, 0, 'a hit made no call: no prediction');
  assert.equal(h.baseline_cost, cost, 'baseline = stored usage at the current price');
  assert.equal(h.cache_key, m.cache_key);
  assert.equal(h.cache_src, miss.id, 'the hit names the request that wrote the entry');
  assert.equal(h.model_served, 'gpt-4o-mini');
  assert.equal(h.tenant, 't1');
});

test('Anthropic: miss then hit, non-stream and stream, with the right baseline', async () => {
  const body = msgBody(uniq('Explain caching briefly'));
  const n0 = mock.requests.length;
  const miss = await send(ANT, body);
  const hit = await send(ANT, body);
  const shit = await send(ANT, { ...body, stream: true });
  assert.equal(mock.requests.length - n0, 1);
  assert.equal(hit.cache, 'exact');
  assert.deepEqual(hit.json, miss.json);
  assert.equal(shit.cache, 'exact');
  assert.match(shit.headers.get('content-type'), /text\/event-stream/);
  const evs = sseEvents(shit.text);
  assert.equal(evs.at(-1).event, 'message_stop');
  assert.match(evs.at(-2).comment, /^: x-costgate-cost-usd=0\.000000000 request_id=req_/);
  const s = anthropicStreamText(evs);
  assert.equal(s.text, miss.json.content[0].text);
  assert.equal(s.stop, 'end_turn');
  const u = expectedMessagesUsage(body);
  assert.equal(s.output, u.output_tokens);
  assert.equal(s.input, u.input_tokens);
  const cost = u.input_tokens * PRICE['claude-haiku-4-5'].input + u.output_tokens * PRICE['claude-haiku-4-5'].output;
  assert.equal(row(miss.id).cost_total, cost);
  for (const r of [row(hit.id), row(shit.id)]) {
    assert.equal(r.cache, 'exact');
    assert.equal(r.cost_total, 0);
    assert.equal(r.baseline_cost, cost);
    assert.equal(r.kind, 'messages');
  }
  assert.equal(row(shit.id).stream, 1);
});

test('a streamed miss is captured and stored; stream and non-stream hits serve it', async () => {
  const text = uniq('Stream me a story');
  const body = chatBody(text, { stream: true });
  const calls = await upstreamCalls(async () => {
    const miss = await send(OAI, body);
    assert.equal(miss.cache, 'miss');
    const plain = await send(OAI, chatBody(text));
    assert.equal(plain.cache, 'exact');
    assert.equal(plain.json.object, 'chat.completion');
    assert.equal(plain.json.choices[0].message.content, mockAnswer(text));
    assert.equal(plain.json.choices[0].finish_reason, 'stop');
    assert.deepEqual(plain.json.usage, expectedChatUsage(chatBody(text)));
    // a stream hit without include_usage: no usage chunk; with it: a usage chunk last
    const s1 = await send(OAI, body);
    const e1 = sseEvents(s1.text);
    assert.equal(e1.at(-1).data, '[DONE]');
    const r1 = openaiStreamText(e1);
    assert.equal(r1.text, mockAnswer(text));
    assert.equal(r1.finish, 'stop');
    assert.equal(r1.usage, null);
    const s2 = await send(OAI, { ...body, stream_options: { include_usage: true } });
    const e2 = sseEvents(s2.text);
    const r2 = openaiStreamText(e2);
    assert.deepEqual(r2.usage, expectedChatUsage(chatBody(text)));
    assert.deepEqual(e2.filter((e) => e.json).at(-1).json.choices, []);
    assert.equal(s2.cache, 'exact');
  });
  assert.equal(calls, 1);
});

test('two tenants never share an entry; a configured share group does', async () => {
  const body = chatBody(uniq('Same words from different tenants'));
  const calls = await upstreamCalls(async () => {
    assert.equal((await send(OAI, body, { key: KEY })).cache, 'miss');            // t1 stores
    assert.equal((await send(OAI, body, { key: KEY_PLAIN })).cache, 'miss');      // t2: its own
    assert.equal((await send(OAI, body, { key: KEY_PLAIN })).cache, 'exact');     // t2's entry
    assert.equal((await send(OAI, body, { key: KEY_T3 })).cache, 'exact');        // t3 shares with t1
    assert.equal((await send(OAI, body, { key: KEY_T4 })).cache, 'miss');         // t4 does not
  });
  assert.equal(calls, 3);
  // a t2 entry never serves t1 even when t1's is gone
  const b2 = chatBody(uniq('only t2 asked this'));
  await send(OAI, b2, { key: KEY_PLAIN });
  assert.equal((await send(OAI, b2, { key: KEY })).cache, 'miss');
});

test('persona partition: another segment is another entry', async () => {
  const body = chatBody(uniq('persona dependent answer'));
  const calls = await upstreamCalls(async () => {
    assert.equal((await send(OAI, body)).cache, 'miss');
    assert.equal((await send(OAI, body, { headers: { 'x-costgate-segment': 'rnd' } })).cache, 'miss');
    assert.equal((await send(OAI, body, { headers: { 'x-costgate-segment': 'rnd' } })).cache, 'exact');
    assert.equal((await send(OAI, body)).cache, 'exact');
  });
  assert.equal(calls, 2);
});

test('what can change the answer changes the key; what cannot does not', async () => {
  const text = uniq('key parts');
  const base = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }], temperature: 0.2 };
  assert.equal((await send(OAI, base)).cache, 'miss');
  const variants = [
    ['system prompt', { ...base, messages: [{ role: 'system', content: 'You are verbose.' }, base.messages[1]] }, {}],
    ['model', { ...base, model: 'gpt-4o' }, {}],
    ['temperature', { ...base, temperature: 0.3 }, {}],
    ['top_p', { ...base, top_p: 0.5 }, {}],
    ['seed', { ...base, seed: 1 }, {}],
    ['stop', { ...base, stop: ['zzz'] }, {}],
    ['max_tokens', { ...base, max_tokens: 500 }, {}],
    ['n', { ...base, n: 2 }, {}],
    ['response_format', { ...base, response_format: { type: 'json_object' } }, {}],
    ['tools', { ...base, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }, {}],
    ['prompt version', base, { 'x-costgate-prompt-version': 'v2' }],
    ['context ids', base, { 'x-costgate-context-ids': 'doc-77' }],
  ];
  for (const [what, body, headers] of variants) {
    const r = await send(OAI, body, { headers });
    assert.equal(r.status, 200, what);
    assert.equal(r.cache, 'miss', `${what} must change the key`);
  }
  for (const [what, body] of [
    ['user', { ...base, user: 'someone' }],
    ['metadata', { ...base, metadata: { trace: 'x' } }],
    ['key order', Object.fromEntries(Object.entries(base).reverse())],
  ]) {
    const r = await send(OAI, body);
    assert.equal(r.cache, 'exact', `${what} must not change the key`);
  }
  // Anthropic: the system prompt is its own field
  const ab = msgBody(uniq('anthropic system prompt'), { system: 'v1 system' });
  assert.equal((await send(ANT, ab)).cache, 'miss');
  assert.equal((await send(ANT, { ...ab, system: 'v2 system' })).cache, 'miss');
  assert.equal((await send(ANT, { ...ab, metadata: { user_id: 'x' } })).cache, 'exact');
});

test('TTL per intent and per tenant, against the test clock', async () => {
  await setClock(gw, T0);
  const ts = chatBody(uniq('my vpn is broken'));
  const h = { 'x-costgate-intent': 'troubleshoot' };
  assert.equal((await send(OAI, ts, { headers: h })).cache, 'miss');
  await setClock(gw, T0 + 1799 * 1000);
  const hit = await send(OAI, ts, { headers: h });
  assert.equal(hit.cache, 'exact');
  assert.equal(hit.headers.get('x-costgate-cache-age'), '1799');
  await setClock(gw, T0 + 1800 * 1000);
  assert.equal((await send(OAI, ts, { headers: h })).cache, 'miss', 'expired at 1800 s');
  assert.equal((await send(OAI, ts, { headers: h })).cache, 'exact', 'stored again');

  await setClock(gw, T0);
  const kl = chatBody(uniq('capital of France'));
  const hk = { 'x-costgate-intent': 'knowledge_lookup' };
  await send(OAI, kl, { headers: hk });
  await setClock(gw, T0 + 86399 * 1000);
  assert.equal((await send(OAI, kl, { headers: hk })).cache, 'exact');
  await setClock(gw, T0 + 86400 * 1000);
  assert.equal((await send(OAI, kl, { headers: hk })).cache, 'miss');

  await setClock(gw, T0);
  const st = chatBody(uniq('hello there friend'));
  const calls = await upstreamCalls(async () => {
    assert.equal((await send(OAI, st, { headers: { 'x-costgate-intent': 'small_talk' } })).cache, 'miss');
    assert.equal((await send(OAI, st, { headers: { 'x-costgate-intent': 'small_talk' } })).cache, 'miss');
  });
  assert.equal(calls, 2, 'small_talk (TTL 0) is never cached');

  const t4 = chatBody(uniq('tenant four question'));
  await send(OAI, t4, { key: KEY_T4 });
  await setClock(gw, T0 + 59 * 1000);
  assert.equal((await send(OAI, t4, { key: KEY_T4 })).cache, 'exact');
  await setClock(gw, T0 + 60 * 1000);
  assert.equal((await send(OAI, t4, { key: KEY_T4 })).cache, 'miss', "t4's own default TTL is 60 s");
  await setClock(gw, T0);
});

test('cache-control: no-store bypasses, no-cache fetches and replaces', async () => {
  const body = chatBody(uniq('cache control'));
  let calls = await upstreamCalls(async () => {
    assert.equal((await send(OAI, body, { headers: { 'cache-control': 'no-store' } })).cache, 'miss');
    assert.equal((await send(OAI, body, { headers: { 'cache-control': 'no-store' } })).cache, 'miss');
  });
  assert.equal(calls, 2);
  const first = await send(OAI, body);
  assert.equal(first.cache, 'miss', 'no-store stored nothing');
  calls = await upstreamCalls(async () => {
    const refresh = await send(OAI, body, { headers: { 'cache-control': 'no-cache' } });
    assert.equal(refresh.cache, 'miss');
    const after = await send(OAI, body);
    assert.equal(after.cache, 'exact');
    assert.equal(row(after.id).cache_src, refresh.id, 'the refresh replaced the entry');
    assert.equal((await send(OAI, body, { headers: { 'cache-control': 'no-store' } })).cache, 'miss');
  });
  assert.equal(calls, 2);
});

test('a sampling temperature above the ceiling is not cached', async () => {
  const body = chatBody(uniq('be creative'), { temperature: 1.5 });
  const calls = await upstreamCalls(async () => {
    await send(OAI, body);
    assert.equal((await send(OAI, body)).cache, 'miss');
  });
  assert.equal(calls, 2);
  const ok = chatBody(uniq('be precise'), { temperature: 1.0 });
  await send(OAI, ok);
  assert.equal((await send(OAI, ok)).cache, 'exact');
});

test('the write guard: error, truncated, refused, tool, cut, broken, unmetered and denied answers are never stored', async () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const cases = [
    ['error', OAI, chatBody(uniq('fail please [[mock:status=500]]'))],
    ['rate limited', OAI, chatBody(uniq('[[mock:status=429]]'))],
    ['truncated (length)', OAI, chatBody(uniq('a long answer please'), { max_tokens: 3 })],
    ['refusal', OAI, chatBody(uniq('refuse this [[mock:refusal]]'))],
    ['refusal, streamed', OAI, chatBody(uniq('refuse this too [[mock:refusal]]'), { stream: true })],
    ['tool call', OAI, chatBody(uniq('call the tool [[mock:tool]]'), { tools })],
    ['cut stream', OAI, chatBody(uniq('cut me [[mock:cut=2]]'), { stream: true })],
    ['error mid-stream', OAI, chatBody(uniq('break me [[mock:stream_error=2]]'), { stream: true })],
    ['no usage', OAI, chatBody(uniq('no usage [[mock:no_usage]]'))],
    ['deny pattern', OAI, chatBody(uniq('say the forbidden phrase'))],
    ['anthropic truncated', ANT, msgBody(uniq('a long anthropic answer'), { max_tokens: 2 })],
    ['anthropic refusal', ANT, msgBody(uniq('refuse [[mock:refusal]]'))],
    ['anthropic refusal, streamed', ANT, msgBody(uniq('refuse streamed [[mock:refusal]]'), { stream: true })],
    ['anthropic error', ANT, msgBody(uniq('[[mock:status=529]]'))],
    ['anthropic cut stream', ANT, msgBody(uniq('cut anthropic [[mock:cut=1]]'), { stream: true })],
    ['anthropic tool', ANT, msgBody(uniq('tool [[mock:tool]]'), { tools: [{ name: 'lookup', input_schema: { type: 'object' } }] })],
  ];
  const s0 = await stats(gw);
  for (const [what, api, body] of cases) {
    const calls = await upstreamCalls(async () => {
      await send(api, body);
      const again = await send(api, body);
      assert.equal(again.cache, 'miss', `${what}: the second request must not be a hit`);
    });
    assert.equal(calls, 2, `${what}: stored nothing`);
  }
  const s1 = await stats(gw);
  const d = (k) => s1.rejected[k] - s0.rejected[k];
  assert.equal(d('status'), 2 * 6, 'errors, cuts and broken streams');
  assert.equal(d('finish'), 2 * 2);
  assert.equal(d('refusal'), 2 * 4);
  assert.equal(d('tool_call'), 2 * 2);
  assert.equal(d('no_usage'), 2);
  assert.equal(d('deny_pattern'), 2);
  // a refusal through the SDK shape reached the client untouched
  const r = await send(OAI, chatBody(uniq('[[mock:refusal]]')));
  assert.equal(r.json.choices[0].message.refusal, MOCK_REFUSAL);
});

test('invalidation by tag (source changed), key, prompt version and tenant', async () => {
  const a = chatBody(uniq('answer from docs 1 and 2'));
  const b = chatBody(uniq('answer from doc 3'));
  const c = chatBody(uniq('answer tagged by hand'));
  await send(OAI, a, { headers: { 'x-costgate-context-ids': 'doc-1, doc-2' } });
  await send(OAI, b, { headers: { 'x-costgate-context-ids': 'doc-3' } });
  await send(OAI, c, { headers: { 'x-costgate-cache-tags': 'faq,pricing' } });
  // the ids are a set: another order or spacing is the same key
  assert.equal((await send(OAI, a, { headers: { 'x-costgate-context-ids': 'doc-2,doc-1' } })).cache, 'exact');
  let r = await invalidate(gw, { tags: ['doc-2'] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { removed: 1, cause: 'tag' });
  assert.equal((await send(OAI, a, { headers: { 'x-costgate-context-ids': 'doc-1,doc-2' } })).cache, 'miss');
  assert.equal((await send(OAI, b, { headers: { 'x-costgate-context-ids': 'doc-3' } })).cache, 'exact');
  r = await invalidate(gw, { tags: ['pricing'], tenant: 't2' });
  assert.equal(r.json.removed, 0, 'tags AND tenant: t1 entry stays');
  r = await invalidate(gw, { tags: ['pricing'] });
  assert.equal(r.json.removed, 1);
  assert.equal((await send(OAI, c, { headers: { 'x-costgate-cache-tags': 'faq,pricing' } })).cache, 'miss');

  // by key (from the ledger)
  const k = await send(OAI, b, { headers: { 'x-costgate-context-ids': 'doc-3' } });
  r = await invalidate(gw, { key: row(k.id).cache_key });
  assert.deepEqual(r.json, { removed: 1, cause: 'key' });
  assert.equal((await send(OAI, b, { headers: { 'x-costgate-context-ids': 'doc-3' } })).cache, 'miss');

  // prompt-version bump: v2 is a new key; retiring v1 removes v1's entries
  const p = chatBody(uniq('versioned prompt'));
  await send(OAI, p, { headers: { 'x-costgate-prompt-version': 'v1' } });
  assert.equal((await send(OAI, p, { headers: { 'x-costgate-prompt-version': 'v1' } })).cache, 'exact');
  assert.equal((await send(OAI, p, { headers: { 'x-costgate-prompt-version': 'v2' } })).cache, 'miss');
  r = await invalidate(gw, { tenant: 't1', prompt_version: 'v1' });
  assert.equal(r.json.cause, 'prompt_version');
  assert.ok(r.json.removed >= 1);
  assert.equal((await send(OAI, p, { headers: { 'x-costgate-prompt-version': 'v1' } })).cache, 'miss');
  assert.equal((await send(OAI, p, { headers: { 'x-costgate-prompt-version': 'v2' } })).cache, 'exact');

  // tenant: everything t2 wrote
  const t2 = chatBody(uniq('t2 private'));
  await send(OAI, t2, { key: KEY_PLAIN });
  r = await invalidate(gw, { tenant: 't2' });
  assert.equal(r.json.cause, 'tenant');
  assert.ok(r.json.removed >= 1);
  assert.equal((await send(OAI, t2, { key: KEY_PLAIN })).cache, 'miss');

  // bad requests name the problem
  for (const [body, want] of [
    [{}, /Say what to remove/], [{ key: 'abc' }, /64 hex/], [{ tags: [] }, /array of 1 to/],
    [{ all: true, tenant: 't1' }, /cannot be combined/], [{ tag: ['x'] }, /Unknown field 'tag'/],
  ]) {
    const bad = await invalidate(gw, body);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, want);
  }
  const inv = JSON.parse((await run('sqlite3', ['-json', gw.ledger, 'SELECT cause, removed FROM cache_invalidations'])).stdout || '[]');
  assert.ok(inv.some((x) => x.cause === 'tag' && x.removed === 1));
  assert.ok(inv.some((x) => x.cause === 'prompt_version'));
  // invalid headers are refused in the API's shape
  const badHdr = await call(gw, OAI, chatBody('x'), // refused before any row is written
    { headers: { 'x-costgate-context-ids': Array.from({ length: 300 }, (_, i) => `d${i}`).join(',') } });
  assert.equal(badHdr.status, 400);
  assert.match(badHdr.json.error.message, /x-costgate-context-ids.*at most 256/);
});

test('feedback: a thumbs down removes the entry that served the request and is recorded', async () => {
  const body = chatBody(uniq('rate this answer'));
  const miss = await send(OAI, body);
  const hit = await send(OAI, body);
  assert.equal(hit.cache, 'exact');
  // thumbs up: recorded, the entry stays
  let f = await feedback(gw, { request_id: hit.id, rating: 'up', comment: 'good' });
  assert.equal(f.status, 200);
  assert.equal(f.json.recorded, true);
  assert.equal(f.json.cache_removed, undefined);
  assert.equal((await send(OAI, body)).cache, 'exact');
  // another tenant cannot rate it (answered as unknown)
  f = await feedback(gw, { request_id: hit.id, rating: 'down' }, KEY_PLAIN);
  assert.equal(f.status, 404);
  assert.equal((await send(OAI, body)).cache, 'exact');
  // thumbs down: gone, recorded
  f = await feedback(gw, { request_id: hit.id, rating: -1 });
  assert.equal(f.status, 200);
  assert.equal(f.json.cache_removed, 1);
  const fb = JSON.parse((await run('sqlite3', ['-json', gw.ledger, `SELECT * FROM feedback WHERE request_id='${hit.id}'`])).stdout);
  assert.equal(fb.length, 1, 'one rating per request and key (the later replaces)');
  assert.equal(fb[0].rating, -1);
  assert.equal(fb[0].tenant, 't1');
  assert.equal(fb[0].key_name, 'test');
  const again = await send(OAI, body);
  assert.equal(again.cache, 'miss');
  // the rated request's entry was replaced meanwhile: a late thumbs down does not remove the new one
  f = await feedback(gw, { request_id: hit.id, rating: 'down' });
  assert.equal(f.json.cache_removed, 0);
  assert.equal((await send(OAI, body)).cache, 'exact');
  // a thumbs down on the miss that wrote the current entry removes it
  f = await feedback(gw, { request_id: again.id, rating: 'down' });
  assert.equal(f.json.cache_removed, 1);
  assert.equal((await send(OAI, body)).cache, 'miss');
  assert.equal(miss.cache, 'miss');
  // bad input
  for (const [b, status, want] of [
    [{ request_id: 'req_nope', rating: 'down' }, 404, /No request req_nope/],
    [{ request_id: hit.id, rating: 'meh' }, 400, /'rating'/],
    [{ rating: 'up' }, 400, /'request_id'/],
    ['not json', 400, /JSON object/],
  ]) {
    const r = await feedback(gw, b);
    assert.equal(r.status, status);
    assert.match(r.json.error.message, want);
  }
  assert.equal((await feedback(gw, { request_id: hit.id, rating: 'up' }, 'cg-wrong-key')).status, 401);
});

test('costgate cache audit, stats and invalidate', async () => {
  const body = chatBody(uniq('audit me'));
  await send(OAI, body, { headers: { 'x-costgate-intent': 'knowledge_lookup', 'x-costgate-context-ids': 'doc-audit' } });
  await send(OAI, body, { headers: { 'x-costgate-intent': 'knowledge_lookup', 'x-costgate-context-ids': 'doc-audit' } });
  const { stdout } = await run(BIN, ['cache', 'audit', '--db', gw.ledger, '--json', '--limit', '5']);
  const a = JSON.parse(stdout);
  const total = a.total[0];
  assert.ok(total.hits >= 10 && total.misses >= 10, JSON.stringify(total));
  assert.ok(total.saved_nano > 0);
  const kl = a.by_intent.find((g) => g.group === 'knowledge_lookup');
  assert.ok(kl && kl.hits >= 1);
  assert.ok(a.by_tenant.find((g) => g.group === 't2'));
  assert.ok(a.by_model.find((g) => g.group === 'gpt-4o-mini'));
  assert.ok(a.top_entries.length >= 1 && a.top_entries.length <= 5);
  assert.ok(a.top_entries[0].saved_nano >= a.top_entries.at(-1).saved_nano);
  assert.ok(a.invalidations.find((x) => x.what === 'tag'));
  assert.ok(a.invalidations.find((x) => x.what === 'feedback'));
  assert.ok(a.ratings.find((x) => x.what === 'down'));
  const table = (await run(BIN, ['cache', 'audit', '--db', gw.ledger])).stdout;
  assert.match(table, /BY INTENT[\s\S]*knowledge_lookup/);
  assert.match(table, /INVALIDATIONS BY CAUSE/);

  const st = JSON.parse((await run(BIN, ['cache', 'stats', '--url', gw.adminUrl, '--key', ADMIN_KEY, '--json'])).stdout);
  assert.equal(st.enabled, true);
  assert.ok(st.hits > 0 && st.entries > 0 && st.bytes > 0);
  const inv = await run(BIN, ['cache', 'invalidate', '--url', gw.adminUrl, '--key', ADMIN_KEY, '--tag', 'doc-audit']);
  assert.deepEqual(JSON.parse(inv.stdout), { removed: 1, cause: 'tag' });
  for (const args of [['cache', '--help'], ['cache', 'audit', '--help'], ['cache', 'invalidate', '--help'], ['cache', 'stats', '--help']]) {
    const h = await run(BIN, args);
    assert.match(h.stdout, /costgate cache audit/);
  }
  await assert.rejects(run(BIN, ['cache', 'invalidate', '--url', gw.adminUrl, '--key', ADMIN_KEY]), /say what to remove/);
});

test('every request left exactly one ledger row; metrics show the cache', async () => {
  const m = await (await fetch(gw.adminUrl + '/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
  assert.match(m, /costgate_cache_lookups_total\{result="hit"\} [1-9]/);
  assert.match(m, /costgate_cache_rejected_total\{reason="refusal"\} [1-9]/);
  const rows = ledgerRows(gw.ledger);
  assert.equal(rows.length, requests);
});
