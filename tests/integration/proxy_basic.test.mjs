// proxy_basic: the real binary over loopback in front of the mock provider:
// each endpoint, streaming and not, what goes upstream, what the client gets,
// and exactly one ledger row per call with the right tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, KEY_PLAIN, cleanup } from '../lib/harness.mjs';

let mock, gw;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  // every call records its pre-call prediction here (default: 1 in 16)
  gw = await startGateway({ mockPort: mock.port, ledgerConf: '  predict_every: 1' });
});
after(async () => { await gw.stop(); await mock.close(); cleanup(gw.dir); });

const post = (path, body, headers = {}) => fetch(gw.url + path, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

function sseEvents(text) {
  return text.split(/\n\n/).filter((b) => b.trim()).map((b) => {
    const ev = {};
    for (const line of b.split('\n')) {
      if (line.startsWith(':')) { ev.comment = line; continue; }
      const i = line.indexOf(':');
      const k = line.slice(0, i), v = line.slice(i + 1).replace(/^ /, '');
      ev[k] = ev[k] ? ev[k] + '\n' + v : v;
    }
    return ev;
  });
}

test('chat non-stream: body passes through, headers, one exact ledger row', async () => {
  const n0 = mock.requests.length;
  const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi [[mock:cached=0]]' }] });
  assert.equal(res.status, 200);
  const body = await res.json();
  const id = res.headers.get('x-costgate-request-id');
  assert.match(id, /^req_[0-9a-f]{24}$/);
  assert.equal(res.headers.get('x-costgate-cache'), 'miss');
  assert.equal(res.headers.get('x-costgate-model'), 'gpt-4o-mini');
  const up = mock.requests[n0];
  assert.equal(up.headers.authorization, 'Bearer sk-upstream-openai-secret');
  assert.ok(!JSON.stringify(up.headers).includes(KEY), 'gateway key must not go upstream');
  const rows = ledgerRows(gw.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1);
  const r = rows[0];
  assert.equal(r.tok_input, body.usage.prompt_tokens);
  assert.equal(r.tok_output, body.usage.completion_tokens);
  // gpt-4o-mini: $0.15 / $0.60 per 1M -> 150 / 600 nano-USD per token
  assert.equal(r.cost_total, body.usage.prompt_tokens * 150 + body.usage.completion_tokens * 600);
  assert.equal(res.headers.get('x-costgate-cost-usd'), (r.cost_total / 1e9).toFixed(9));
  assert.equal(r.status, 'ok');
  assert.equal(r.estimated, 0);
  assert.equal(r.tenant, 't1');
  assert.equal(r.baseline_cost, r.cost_total);
});

test('chat stream without include_usage: usage asked upstream, extra chunk stripped', async () => {
  const n0 = mock.requests.length;
  const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream me' }] });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const text = await res.text();
  const up = mock.requests[n0];
  assert.equal(up.body.stream_options.include_usage, true);
  const evs = sseEvents(text).filter((e) => e.data);
  assert.equal(evs.at(-1).data, '[DONE]');
  for (const e of evs.slice(0, -1)) {
    const j = JSON.parse(e.data);
    assert.ok(j.choices.length > 0, 'no usage-only chunk reaches a client that did not ask');
  }
  const id = res.headers.get('x-costgate-request-id');
  const rows = ledgerRows(gw.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].estimated, 0);
  assert.ok(rows[0].tok_output > 0 && rows[0].tok_input > 0);
  assert.match(text, /: x-costgate-cost-usd=\d+\.\d{9}/);
});

test('chat stream with include_usage: the client keeps its usage chunk', async () => {
  const res = await post('/v1/chat/completions', { model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x [[mock:cached=1024]]' }] });
  const text = await res.text();
  const evs = sseEvents(text).filter((e) => e.data && e.data !== '[DONE]').map((e) => JSON.parse(e.data));
  const last = evs.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens_details.cached_tokens, 1024);
  const row = ledgerRows(gw.ledger, `request_id='${res.headers.get('x-costgate-request-id')}'`)[0];
  assert.equal(row.tok_cached_read, 1024);
  assert.equal(row.tok_input, last.usage.prompt_tokens - 1024);
  // gpt-4o: $2.50 in, $1.25 cached, $10 out per 1M
  assert.equal(row.cost_total, row.tok_input * 2500 + 1024 * 1250 + row.tok_output * 10000);
});

test('anthropic messages, stream and not, priced with cache read/write outside input', async () => {
  for (const stream of [false, true]) {
    const res = await post('/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 200, stream,
      messages: [{ role: 'user', content: 'hello [[mock:cached=1000,cache_write=200,cache_write_1h=100]]' }] },
    { authorization: '', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-costgate-request-id');
    const text = await res.text();
    let usage;
    if (stream) {
      const evs = sseEvents(text);
      assert.equal(evs.at(-1).event, 'message_stop');
      const start = JSON.parse(evs.find((e) => e.event === 'message_start').data).message.usage;
      const delta = JSON.parse(evs.filter((e) => e.event === 'message_delta').at(-1).data).usage;
      usage = { ...start, output_tokens: delta.output_tokens };
    } else {
      usage = JSON.parse(text).usage;
    }
    const row = ledgerRows(gw.ledger, `request_id='${id}'`)[0];
    assert.equal(row.tok_input, usage.input_tokens);
    assert.equal(row.tok_cached_read, 1000);
    assert.equal(row.tok_cache_write_5m, usage.cache_creation.ephemeral_5m_input_tokens);
    assert.equal(row.tok_cache_write_1h, usage.cache_creation.ephemeral_1h_input_tokens);
    assert.equal(row.tok_output, usage.output_tokens);
    // claude-sonnet-4-5: $3 in, $0.30 read, $3.75 write 5m, $6 write 1h, $15 out per 1M
    const want = usage.input_tokens * 3000 + 1000 * 300 + row.tok_cache_write_5m * 3750 +
      row.tok_cache_write_1h * 6000 + usage.output_tokens * 15000;
    assert.equal(row.cost_total, want, `stream=${stream}`);
    assert.equal(row.cost_input + row.cost_output, want);
  }
  const up = mock.requests.at(-1);
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream-secret');
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
});

test('embeddings go on the embedding axis', async () => {
  const res = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['a b c', 'd e f'] });
  assert.equal(res.status, 200);
  const body = await res.json();
  const row = ledgerRows(gw.ledger, `request_id='${res.headers.get('x-costgate-request-id')}'`)[0];
  assert.equal(row.tok_embedding, body.usage.prompt_tokens);
  assert.equal(row.cost_embedding, body.usage.prompt_tokens * 20); // $0.02 / 1M
  assert.equal(row.cost_input, 0);
  assert.equal(row.cost_total, row.cost_embedding);
});

test('models list in both shapes', async () => {
  const o = await (await fetch(gw.url + '/v1/models', { headers: { authorization: `Bearer ${KEY}` } })).json();
  assert.equal(o.object, 'list');
  assert.ok(o.data.some((m) => m.id === 'gpt-4o-mini'));
  assert.ok(!o.data.some((m) => m.id.startsWith('claude')));
  const a = await (await fetch(gw.url + '/v1/models', { headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' } })).json();
  assert.ok(a.data.every((m) => m.type === 'model' && m.id.startsWith('claude')));
  assert.equal(a.has_more, false);
  const denied = await fetch(gw.url + '/v1/models');
  assert.equal(denied.status, 401);
});

test('attribution headers only from keys allowed to assert them', async () => {
  const hdr = { 'x-costgate-user': 'alice', 'x-costgate-feature': 'search', 'x-costgate-segment': 'pro', 'x-costgate-intent': 'faq' };
  const a = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a' }] }, hdr);
  await a.text();
  const ra = ledgerRows(gw.ledger, `request_id='${a.headers.get('x-costgate-request-id')}'`)[0];
  assert.deepEqual([ra.user, ra.feature, ra.segment, ra.intent], ['alice', 'search', 'pro', 'faq']);
  const b = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'b' }] }, { ...hdr, authorization: `Bearer ${KEY_PLAIN}` });
  await b.text();
  const rb = ledgerRows(gw.ledger, `request_id='${b.headers.get('x-costgate-request-id')}'`)[0];
  assert.deepEqual([rb.tenant, rb.user, rb.feature, rb.segment], ['t2', 'u2', '', 'default']);
});

test('external costs complete the five axes, idempotently', async () => {
  const send = (body, key = 'cg-test-admin-key') => fetch(gw.adminUrl + '/admin/costs', {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const body = { id: 'websearch-2026-11', axis: 'external_api', amount_usd: '12.345678901', tenant: 't1', feature: 'search', provider: 'serp' };
  const r1 = await send(body);
  assert.equal(r1.status, 201);
  assert.equal((await r1.json()).amount_nano_usd, 12345678901);
  const r2 = await send(body);
  assert.equal(r2.status, 409);
  const bad = await send({ ...body, id: 'x2', axis: 'input' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /axis/);
  const noauth = await send({ ...body, id: 'x3' }, 'wrong');
  assert.equal(noauth.status, 401);
  const rows = ledgerRows(gw.ledger, `kind='external'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].cost_external_api, 12345678901);
  const st = await send({ id: 'vec-db', axis: 'storage_compute', amount_usd: '0.5', tenant: 't1' });
  assert.equal(st.status, 201);
});

test('metrics expose requests, tokens, cost and histograms', async () => {
  const m = await (await fetch(gw.adminUrl + '/metrics', { headers: { authorization: 'Bearer cg-test-admin-key' } })).text();
  assert.match(m, /costgate_requests_total\{api="openai",endpoint="chat",code="2xx",stream="false"\} \d+/);
  assert.match(m, /costgate_tokens_total\{model="gpt-4o-mini",class="input"\} \d+/);
  assert.match(m, /costgate_cost_nano_usd_total\{model="claude-sonnet-4-5",axis="input"\} \d+/);
  assert.match(m, /costgate_upstream_ttfb_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.match(m, /costgate_ledger_rows_total \d+/);
  assert.match(m, /costgate_ledger_spool_full_total 0/);
  const denied = await fetch(gw.adminUrl + '/metrics');
  assert.equal(denied.status, 401);
});

test('each row records the pre-call input prediction; report --predictions compares it per model', async () => {
  const { execFileSync } = await import('node:child_process');
  const { BIN } = await import('../lib/harness.mjs');
  const body = { model: 'gpt-4o', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Count my tokens, please.' }] };
  const res = await post('/v1/chat/completions', body);
  await res.json();
  const row = ledgerRows(gw.ledger, `request_id='${res.headers.get('x-costgate-request-id')}'`)[0];
  const est = JSON.parse(execFileSync(BIN, ['tokens', '--request', '--json', '-'], { input: JSON.stringify(body), encoding: 'utf8' }));
  assert.equal(row.tok_input_predicted, est.input_tokens, 'the exact tiktoken count with chat framing');
  const rep = JSON.parse(execFileSync(BIN, ['report', '--predictions', '--format', 'json', '--db', gw.ledger], { encoding: 'utf8' }));
  const m = rep.find((x) => x.model === 'gpt-4o');
  assert.ok(m && m.calls >= 1);
  const actual = row.tok_input + row.tok_cached_read + row.tok_cache_write_5m + row.tok_cache_write_1h;
  if (m.calls === 1) assert.equal(m.median_error_bp, Math.trunc((est.input_tokens - actual) * 10000 / actual));
});

test('ledger.predict_every samples the prediction: 1 call in N records it, the others 0', async () => {
  const g = await startGateway({ mockPort: mock.port, workers: 1, ledgerConf: '  predict_every: 3' });
  try {
    const ids = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `sample ${i}` }] }),
      });
      assert.equal(res.status, 200);
      await res.json();
      ids.push(res.headers.get('x-costgate-request-id'));
    }
    const pred = ids.map((id) => ledgerRows(g.ledger, `request_id='${id}'`)[0].tok_input_predicted);
    assert.deepEqual(pred.map((p) => p > 0), [false, false, true, false, false, true, false], `predicted: ${pred}`);
  } finally {
    await g.stop();
    cleanup(g.dir);
  }
});
