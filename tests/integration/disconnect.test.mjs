// disconnect: clients that leave before their response ends. The gateway
// drains the upstream (bounded in time and bytes) to read the real usage, or
// estimates and flags the row when the drain is cut short; each such request
// is settled exactly once, never at $0, and the gateway stays healthy
// (disconnect counter, in-flight gauge back to 0, next request served).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, expectedChatUsage, expectedMessagesUsage } from '../mock/provider.mjs';
import { startGateway, ledgerRows, waitRows, KEY, ADMIN_KEY, cleanup, sleep } from '../lib/harness.mjs';

let mock, gw, gwShort;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port });
  gwShort = await startGateway({ mockPort: mock.port, server: '  timeouts:\n    drain_ms: 200' });
});
after(async () => {
  await gw.stop();
  await gwShort.stop();
  await mock.close();
  cleanup(gw.dir);
  cleanup(gwShort.dir);
});

const OPENAI = { name: 'openai', path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEY}` },
  body: (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra }) };
const ANTH = { name: 'anthropic', path: '/v1/messages', headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
  body: (content, extra = {}) => ({ model: 'claude-sonnet-4-5', max_tokens: 400, messages: [{ role: 'user', content }], ...extra }) };

// Starts a request; returns { res (or error), id, abort() }.
async function start(g, api, body) {
  const ac = new AbortController();
  const res = await fetch(g.url + api.path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...api.headers },
    body: JSON.stringify(body), signal: ac.signal,
  });
  return { res, id: res.headers.get('x-costgate-request-id'), abort: () => ac.abort() };
}

// Reads SSE until `n` events (blank-line separated) have arrived, then aborts.
async function abortAfterEvents(g, api, body, n) {
  const r = await start(g, api, body);
  assert.equal(r.res.status, 200);
  const reader = r.res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  while ((text.match(/\n\n/g) || []).length < n) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended before the abort point');
    text += dec.decode(value);
  }
  r.abort();
  await reader.cancel().catch(() => {});
  return { id: r.id, text };
}

async function metrics(g) {
  const res = await fetch(g.adminUrl + '/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return res.text();
}
const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};

const upstreamBodyFor = (content) => {
  const r = [...mock.requests].reverse().find((x) => JSON.stringify(x.body || {}).includes(content));
  assert.ok(r, `the upstream request carrying "${content}"`);
  return r.body;
};

for (const api of [OPENAI, ANTH]) {
  test(`${api.name}: client aborts mid-stream: upstream drained, exact usage, client_disconnected`, async () => {
    const tag = `drain-${api.name}-${Date.now()}`;
    const body = api.body(`${tag} [[mock:drip=50,words=20]]`, { stream: true });
    const { id, text } = await abortAfterEvents(gw, api, body, 3);
    assert.ok(!/\[DONE\]|message_stop/.test(text), 'aborted before the end');
    const rows = await waitRows(gw.ledger, `request_id='${id}'`, 1, 15000);
    assert.equal(rows.length, 1, 'settled exactly once');
    const row = rows[0];
    assert.equal(row.status, 'client_disconnected');
    assert.equal(row.http_status, 499);
    assert.equal(row.estimated, 0, 'the drain read the usage the provider reported');
    const up = upstreamBodyFor(tag);
    if (api === OPENAI) {
      const u = expectedChatUsage(up);
      assert.equal(row.tok_input, u.prompt_tokens);
      assert.equal(row.tok_output, u.completion_tokens);
      assert.equal(row.cost_total, u.prompt_tokens * 150 + u.completion_tokens * 600);
    } else {
      const u = expectedMessagesUsage(up);
      assert.equal(row.tok_input, u.input_tokens);
      assert.equal(row.tok_output, u.output_tokens);
      assert.equal(row.cost_total, u.input_tokens * 3000 + u.output_tokens * 15000);
    }
    // estimated === 0 above already proves the drain read the usage to the end
    // rather than being cut off by a deadline; no wall-clock check needed here.
  });

  test(`${api.name}: drain cut short by drain_ms: estimated, > $0, client_disconnected`, async () => {
    const tag = `short-${api.name}-${Date.now()}`;
    const { id } = await abortAfterEvents(gwShort, api, api.body(`${tag} [[mock:drip=1000,words=16]]`, { stream: true }), 2);
    const rows = await waitRows(gwShort.ledger, `request_id='${id}'`, 1, 8000);
    assert.equal(rows.length, 1);
    // the upstream still has ~14 one-second chunks to go and its usage comes
    // last: an estimated row (below) means the drain deadline cut it short
    const row = rows[0];
    assert.equal(row.status, 'client_disconnected');
    assert.equal(row.estimated, 1);
    assert.ok(row.cost_total > 0, 'never priced at zero');
    assert.ok(row.tok_input > 0 && row.tok_output > 0);
  });

  test(`${api.name}: non-stream client leaves while the upstream is slow: one row, exact usage`, async () => {
    const tag = `nonstream-${api.name}-${Date.now()}`;
    const n0 = mock.requests.length;
    const t0 = Date.now();
    const body = api.body(`${tag} [[mock:delay=1500]]`);
    const ac = new AbortController();
    const p = fetch(gw.url + api.path, {
      method: 'POST', headers: { 'content-type': 'application/json', ...api.headers },
      body: JSON.stringify(body), signal: ac.signal,
    }).catch((e) => e);
    // wait until the call is upstream, then leave
    for (let i = 0; i < 1000 && mock.requests.length === n0; i++) await sleep(10);
    await sleep(100);
    ac.abort();
    assert.equal((await p).name, 'AbortError');
    const rows = await waitRows(gw.ledger, `model_requested='${body.model}' AND stream=0 AND ts_ms >= ${t0}`, 1, 6000);
    await sleep(300);
    assert.equal(ledgerRows(gw.ledger, `model_requested='${body.model}' AND stream=0 AND ts_ms >= ${t0}`).length, 1, 'settled exactly once');
    const row = rows[0];
    assert.equal(row.status, 'client_disconnected');
    assert.equal(row.http_status, 499);
    assert.equal(row.estimated, 0);
    const up = upstreamBodyFor(tag);
    const u = api === OPENAI ? expectedChatUsage(up) : expectedMessagesUsage(up);
    assert.equal(row.tok_input, api === OPENAI ? u.prompt_tokens : u.input_tokens);
    assert.equal(row.tok_output, api === OPENAI ? u.completion_tokens : u.output_tokens);
    assert.ok(row.cost_total > 0);
  });
}

test('non-stream disconnect with a short drain: estimated input, never $0', async () => {
  const n0 = mock.requests.length;
  const t0 = Date.now();
  const ac = new AbortController();
  const p = fetch(gwShort.url + OPENAI.path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...OPENAI.headers },
    body: JSON.stringify(OPENAI.body('short non-stream [[mock:hold=short-nonstream]]')), signal: ac.signal,
  }).catch((e) => e);
  for (let i = 0; i < 1000 && mock.requests.length === n0; i++) await sleep(10);
  ac.abort();
  await p;
  const rows = await waitRows(gwShort.ledger, `stream=0 AND ts_ms >= ${t0}`, 1, 8000);
  assert.equal(rows.length, 1);
  // the upstream holds its answer until released: the row settled at the
  // drain deadline (200 ms), not when the upstream answered
  assert.equal(mock.held()['short-nonstream'], 1, 'the upstream has not answered yet');
  mock.release('short-nonstream');
  assert.equal(rows[0].status, 'client_disconnected');
  assert.equal(rows[0].estimated, 1);
  assert.ok(rows[0].cost_total > 0, 'the provider got the request: never priced at zero');
  assert.ok(rows[0].tok_input > 0);
});

test('a client that half-closes after its request: counted as gone, still answered', async () => {
  // As in nginx, EOF from the client while its call is upstream means it
  // left; one that only shut down its sending side still reads the reply.
  for (const stream of [false, true]) {
    const tag = `half-${stream}-${Date.now()}`;
    const body = JSON.stringify(OPENAI.body(`${tag} [[mock:delay=300]]`, { stream }));
    const s = net.connect(gw.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    const ended = new Promise((r) => s.on('close', r));
    s.write(`POST ${OPENAI.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${KEY}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    s.end();
    await Promise.race([ended, sleep(5000)]);
    s.destroy();
    const id = (got.match(/x-costgate-request-id: (req_\w+)/i) || [])[1];
    assert.ok(id, `a reply with its request id: ${got.slice(0, 200)}`);
    if (stream) {
      // nothing of the stream was sent before it left: a provider-shaped 499
      assert.match(got, /^HTTP\/1\.1 499/);
      const json = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4));
      assert.equal(json.error.code, 'client_closed');
    } else {
      assert.match(got, /^HTTP\/1\.1 200/);
    }
    const row = (await waitRows(gw.ledger, `request_id='${id}'`, 1))[0];
    assert.equal(row.status, 'client_disconnected');
    assert.equal(row.estimated, 0, 'the upstream was drained: exact usage');
    const u = expectedChatUsage(upstreamBodyFor(tag));
    assert.equal(row.tok_input, u.prompt_tokens);
    assert.equal(row.tok_output, u.completion_tokens);
  }
});

test('50 random disconnects: each settled once, counted, in-flight back to 0, still serving', async () => {
  const m0 = await metrics(gw);
  const d0 = metric(m0, 'costgate_client_disconnects_total');
  const rows0 = ledgerRows(gw.ledger).length;
  const d0rows = ledgerRows(gw.ledger, `status='client_disconnected'`).length;
  const ids = [];
  const jobs = [];
  for (let i = 0; i < 50; i++) {
    const api = i % 2 ? OPENAI : ANTH;
    const stream = i % 4 < 2;
    jobs.push((async () => {
      await sleep(Math.floor(Math.random() * 200));
      if (stream) {
        const { id } = await abortAfterEvents(gw, api, api.body(`rand ${i} [[mock:drip=20,words=40]]`, { stream: true }), 1 + (i % 5));
        ids.push(id);
      } else {
        const ac = new AbortController();
        const p = fetch(gw.url + api.path, {
          method: 'POST', headers: { 'content-type': 'application/json', ...api.headers },
          body: JSON.stringify(api.body(`rand ${i} [[mock:delay=400]]`)), signal: ac.signal,
        }).catch((e) => e);
        await sleep(150 + Math.floor(Math.random() * 150));
        ac.abort();
        await p;
      }
    })());
  }
  await Promise.all(jobs);
  // Under load a client can abort before its request even reached the
  // gateway: such a request is never sent upstream and rightly has no row.
  // Every request that reached the provider must have exactly one.
  const reached = () => mock.requests.filter((x) => /rand \d+ \[\[mock/.test(JSON.stringify(x.body || {}))).length;
  await waitRows(gw.ledger, '1=1', rows0 + reached(), 15000);
  await sleep(200); // nothing more comes
  const n = reached();
  assert.ok(n >= 40, `only ${n} of 50 requests reached the provider`);
  assert.equal(ledgerRows(gw.ledger).length, rows0 + n, 'one row per request that reached the provider');
  assert.equal(ledgerRows(gw.ledger, `status='client_disconnected'`).length, d0rows + n, 'all settled as client_disconnected');
  for (const id of ids) assert.equal(ledgerRows(gw.ledger, `request_id='${id}'`).length, 1);
  const all = ledgerRows(gw.ledger, `status='client_disconnected'`);
  for (const r of all) assert.ok(r.cost_total > 0, `disconnected row ${r.request_id} at $0`);
  const allIds = ledgerRows(gw.ledger).map((r) => r.request_id);
  assert.equal(new Set(allIds).size, allIds.length, 'no row written twice');
  // the gauge and the counter
  let m;
  for (let i = 0; i < 50; i++) {
    m = await metrics(gw);
    if (metric(m, 'costgate_inflight_requests') === 0) break;
    await sleep(100);
  }
  assert.equal(metric(m, 'costgate_inflight_requests'), 0, 'in-flight gauge back to 0');
  assert.equal(metric(m, 'costgate_client_disconnects_total') - d0, n, 'every disconnect counted');
  // still healthy
  const res = await fetch(gw.url + OPENAI.path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...OPENAI.headers },
    body: JSON.stringify(OPENAI.body('after the storm')),
  });
  assert.equal(res.status, 200);
  await res.json();
  assert.equal((await fetch(gw.url + '/healthz')).status, 200);
});
