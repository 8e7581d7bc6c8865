// bad_input: what the gateway does with requests it must refuse, for both
// wire APIs: malformed or mistyped JSON, missing fields, oversized bodies,
// unknown or unpriced models, missing/invalid keys, bad attribution headers.
// Each gets a provider-shaped 4xx naming the problem, nothing goes upstream,
// no ledger row is written, and the server keeps serving. Also slow clients:
// one trickling its body byte by byte, one that never reads a long stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, waitRows, KEY, cleanup, sleep } from '../lib/harness.mjs';

let mock, gw;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port, server: '  max_body_bytes: 65536' });
});
after(async () => { await gw.stop(); await mock.close(); cleanup(gw.dir); });

const OPENAI = { path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEY}` } };
const ANTH = { path: '/v1/messages', headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' } };

async function send(api, body, headers = {}, g = gw) {
  const res = await fetch(g.url + api.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...api.headers, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { res, status: res.status, text, json, id: res.headers.get('x-costgate-request-id') };
}

const rowCount = (g = gw) => ledgerRows(g.ledger).length;

// The error is in the API's own shape; returns the message.
function shape(api, r) {
  assert.ok(r.json, `JSON error body, got: ${r.text.slice(0, 200)}`);
  assert.match(r.res.headers.get('content-type') || '', /application\/json/);
  if (api === OPENAI) {
    assert.deepEqual(Object.keys(r.json), ['error']);
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(typeof r.json.error.type, 'string');
    return r.json.error.message;
  }
  assert.equal(r.json.type, 'error');
  assert.equal(typeof r.json.error.type, 'string');
  assert.equal(typeof r.json.error.message, 'string');
  return r.json.error.message;
}

// Runs a refused request and checks: status, shape, nothing upstream, no row.
async function refused(api, body, { status = 400, headers = {}, field, msg, code, type } = {}) {
  const up0 = mock.requests.length;
  const rows0 = rowCount();
  const r = await send(api, body, headers);
  assert.equal(r.status, status, `status for ${JSON.stringify(body).slice(0, 80)}: ${r.text.slice(0, 300)}`);
  const m = shape(api, r);
  if (field) {
    if (api === OPENAI) assert.equal(r.json.error.param, field, `param names ${field}: ${r.text}`);
    assert.ok(m.includes(field), `message names ${field}: ${m}`);
  }
  if (msg) assert.match(m, msg);
  if (code && api === OPENAI) assert.equal(r.json.error.code, code);
  if (type) assert.equal(api === OPENAI ? r.json.error.type : r.json.error.type, type);
  assert.equal(mock.requests.length, up0, 'nothing went upstream');
  if (r.id) assert.equal(ledgerRows(gw.ledger, `request_id='${r.id}'`).length, 0, 'no ledger row');
  assert.equal(rowCount(), rows0, 'no ledger row at all');
  return r;
}

const msgs = [{ role: 'user', content: 'hello' }];
const okBody = (api, extra = {}) => (api === OPENAI
  ? { model: 'gpt-4o-mini', messages: msgs, ...extra }
  : { model: 'claude-sonnet-4-5', max_tokens: 50, messages: msgs, ...extra });

for (const [name, api] of [['openai', OPENAI], ['anthropic', ANTH]]) {
  test(`${name}: malformed JSON names the parse problem with line and column`, async () => {
    const r = await refused(api, '{"model": "x",\n "messages": [ {"role": "user",, } ]}', { msg: /line 2, column \d+/ });
    if (api === OPENAI) assert.equal(r.json.error.code, 'invalid_json');
    else assert.equal(r.json.error.type, 'invalid_request_error');
    await refused(api, '{"model": "gpt-4o"', { msg: /line \d+, column \d+/ });
    await refused(api, 'not json at all', { msg: /parse/ });
  });

  test(`${name}: non-object and empty bodies`, async () => {
    await refused(api, '[1,2,3]', { msg: /JSON object/ });
    await refused(api, '"just a string"', { msg: /JSON object/ });
    await refused(api, 'null', { msg: /JSON object/ });
    await refused(api, '', { msg: /empty/ });
  });

  test(`${name}: wrong types name the field`, async () => {
    await refused(api, okBody(api, { model: 42 }), { field: 'model' });
    await refused(api, okBody(api, { messages: 'hello' }), { field: 'messages' });
    await refused(api, okBody(api, { messages: [] }), api === OPENAI ? { field: 'messages' } : {});
    await refused(api, okBody(api, { stream: 'yes' }), { field: 'stream' });
    await refused(api, okBody(api, { max_tokens: '10' }), { field: 'max_tokens' });
    await refused(api, okBody(api, { max_tokens: 0 }), { field: 'max_tokens' });
    await refused(api, okBody(api, { max_tokens: -5 }), { field: 'max_tokens' });
    await refused(api, okBody(api, { model: '' }), { field: 'model' });
    await refused(api, okBody(api, { model: 'gpt-' + 'x'.repeat(300) }), { field: 'model' });
  });

  test(`${name}: missing required fields`, async () => {
    const noModel = okBody(api); delete noModel.model;
    await refused(api, noModel, { field: 'model' });
    const noMsgs = okBody(api); delete noMsgs.messages;
    await refused(api, noMsgs, { field: 'messages' });
    if (api === ANTH) {
      const noMax = okBody(api); delete noMax.max_tokens;
      await refused(api, noMax, { field: 'max_tokens', msg: /required/ });
    }
  });

  test(`${name}: oversized body: 413 stating size and limit`, async () => {
    const big = okBody(api, { messages: [{ role: 'user', content: 'x'.repeat(100_000) }] });
    const r = await refused(api, big, { status: 413, msg: /65536/ });
    const size = Buffer.byteLength(JSON.stringify(big));
    assert.ok(shape(api, r).includes(String(size)), `message states the size ${size}`);
    if (api === OPENAI) assert.equal(r.json.error.code, 'request_too_large');
  });

  test(`${name}: unknown model (no provider) is a 404 naming the model`, async () => {
    const model = api === OPENAI ? 'mistral-large-latest' : 'gpt-4o';
    const r = await refused(api, okBody(api, { model }), { status: 404, msg: new RegExp(model) });
    if (api === OPENAI) {
      assert.equal(r.json.error.code, 'model_not_found');
      assert.equal(r.json.error.param, 'model');
    } else assert.equal(r.json.error.type, 'not_found_error');
  });

  test(`${name}: model with no price is refused (model_not_priced)`, async () => {
    const model = api === OPENAI ? 'unpriced-model-x' : 'claude-unpriced-model-x';
    const r = await refused(api, okBody(api, { model }), { status: 400, msg: /no price/ });
    if (api === OPENAI) {
      assert.equal(r.json.error.code, 'model_not_priced');
      assert.equal(r.json.error.param, 'model');
    }
    assert.ok(shape(api, r).includes(model));
  });

  test(`${name}: missing and invalid keys: 401, the key never echoed`, async () => {
    const noKey = api === OPENAI ? { authorization: '' } : { 'x-api-key': '' };
    const r1 = await refused(api, okBody(api), { status: 401, headers: noKey, msg: /API key/ });
    if (api === ANTH) assert.equal(r1.json.error.type, 'authentication_error');
    const secret = 'cg-wrong-SECRET-k3y-7f3a9b';
    const bad = api === OPENAI ? { authorization: `Bearer ${secret}` } : { 'x-api-key': secret };
    const r2 = await refused(api, okBody(api), { status: 401, headers: bad, msg: /[Ii]nvalid/ });
    if (api === OPENAI) assert.equal(r2.json.error.code, 'invalid_api_key');
    else assert.equal(r2.json.error.type, 'authentication_error');
    assert.ok(!r2.text.includes(secret) && !r2.text.includes('SECRET'), 'key not in the body');
    assert.ok(!JSON.stringify([...r2.res.headers]).includes(secret), 'key not in headers');
    assert.ok(!gw.stderr().includes(secret) && !gw.stderr().includes('SECRET'), 'key not in the log');
    // a key-like prefix of the right key is still invalid
    const near = api === OPENAI ? { authorization: `Bearer ${KEY}x` } : { 'x-api-key': `${KEY}x` };
    await refused(api, okBody(api), { status: 401, headers: near });
  });

  test(`${name}: bad attribution header (too long, control chars) names the header`, async () => {
    await refused(api, okBody(api), { headers: { 'x-costgate-user': 'u'.repeat(300) }, field: 'x-costgate-user' });
    await refused(api, okBody(api), { headers: { 'x-costgate-feature': 'f'.repeat(64) }, field: 'x-costgate-feature' });
  });
}

test('far over the limit: answered 413 in the API shape without reading the body; the client reads it, no reset', async () => {
  // The body is not read (the declared Content-Length is enough); the
  // connection closes by lingering, so a client still sending gets the 413.
  const up0 = mock.requests.length;
  const rows0 = rowCount();
  for (const n of [300_000, 5_000_000]) {
    const body = JSON.stringify(okBody(OPENAI, { messages: [{ role: 'user', content: 'x'.repeat(n) }] }));
    const res = await fetch(gw.url + OPENAI.path, { method: 'POST', headers: { 'content-type': 'application/json', ...OPENAI.headers }, body });
    assert.equal(res.status, 413, `n=${n}`);
    const j = await res.json();
    assert.equal(j.error.code, 'request_too_large');
    assert.ok(j.error.message.includes(String(Buffer.byteLength(body))), j.error.message);
  }
  assert.equal(mock.requests.length, up0);
  assert.equal(rowCount(), rows0);
});

// Raw HTTP/1.1 over a socket: the whole answer, until the server closes.
function rawExchange(port, bytes) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.write(bytes);
    setTimeout(() => s.destroy(), 5000);
  });
}

test('chunked request body: decoded and served like any other', async () => {
  const body = JSON.stringify(okBody(OPENAI, { messages: [{ role: 'user', content: 'chunked body' }] }));
  const half = body.length >> 1;
  const parts = [body.slice(0, half), body.slice(half)];
  const chunks = parts.map((p) => `${Buffer.byteLength(p).toString(16)};ext=1\r\n${p}\r\n`).join('');
  const got = await rawExchange(gw.port, `POST ${OPENAI.path} HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nConnection: close\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n/, got.slice(0, 300));
  const id = (got.match(/x-costgate-request-id: (req_\w+)/i) || [])[1];
  assert.ok(id);
  const rows = await waitRows(gw.ledger, `request_id='${id}'`, 1, 5000);
  assert.equal(rows[0].status, 'ok');
});

test('malformed HTTP: refused in the API shape naming the problem, connection closed', async () => {
  const up0 = mock.requests.length;
  const rows0 = rowCount();
  const cases = [
    [`POST ${ANTH.path} HTTP/1.1\r\nanthropic-version: 2023-06-01\r\nTransfer-Encoding: gzip\r\n\r\n`, 501, /Transfer-Encoding/, ANTH],
    [`POST ${OPENAI.path} HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400, /conflicting Content-Length/, OPENAI],
    [`POST ${OPENAI.path} HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}`, 400, /both Content-Length and Transfer-Encoding/, OPENAI],
  ];
  for (const [req, status, msg, api] of cases) {
    const got = await rawExchange(gw.port, req);
    assert.ok(got.startsWith(`HTTP/1.1 ${status} `), got.slice(0, 200));
    assert.match(got, /Connection: close/i);
    const json = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4));
    if (api === ANTH) {
      assert.equal(json.type, 'error');
      assert.match(json.error.message, msg);
    } else {
      assert.match(json.error.message, msg);
    }
  }
  assert.equal(mock.requests.length, up0);
  assert.equal(rowCount(), rows0);
});

test('a normal request still succeeds after all the bad input, one row each', async () => {
  for (const api of [OPENAI, ANTH]) {
    const up0 = mock.requests.length;
    const r = await send(api, okBody(api));
    assert.equal(r.status, 200, r.text);
    assert.equal(mock.requests.length, up0 + 1);
    const rows = ledgerRows(gw.ledger, `request_id='${r.id}'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'ok');
    assert.ok(rows[0].cost_total > 0);
  }
  // nothing refused left a row behind: every row is one of the successful calls
  const all = ledgerRows(gw.ledger);
  assert.ok(all.every((r) => r.status === 'ok' && r.http_status === 200), JSON.stringify(all.map((r) => r.status)));
  const ids = all.map((r) => r.request_id);
  assert.equal(new Set(ids).size, ids.length, 'no row written twice');
});

test('pricing.unknown_model: allow serves an unpriced model, flagged unpriced with tokens', async () => {
  const g = await startGateway({ mockPort: mock.port, pricing: '  unknown_model: allow' });
  try {
    const r = await send(OPENAI, { model: 'unpriced-model-x', messages: msgs }, {}, g);
    assert.equal(r.status, 200, r.text);
    const rows = ledgerRows(g.ledger, `request_id='${r.id}'`);
    assert.equal(rows.length, 1);
    const row = rows[0];
    assert.equal(row.unpriced, 1);
    assert.equal(row.status, 'ok');
    assert.equal(row.tok_input, r.json.usage.prompt_tokens);
    assert.equal(row.tok_output, r.json.usage.completion_tokens);
    assert.ok(row.tok_input > 0 && row.tok_output > 0);
    // a model no provider serves is still a 404, price policy or not
    const r404 = await send(OPENAI, { model: 'mistral-large-latest', messages: msgs }, {}, g);
    assert.equal(r404.status, 404, r404.text);
  } finally {
    await g.stop();
    cleanup(g.dir);
  }
});

// --- slow clients ------------------------------------------------------------

function rawRequest(port, path, headers, bodyLen) {
  const sock = net.connect(port, '127.0.0.1');
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/json',
    `Content-Length: ${bodyLen}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''];
  sock.write(lines.join('\r\n'));
  return sock;
}

test('a client trickling its body one byte every 600 ms does not hold up others', async () => {
  const up0 = mock.requests.length;
  const rows0 = rowCount();
  const body = JSON.stringify(okBody(OPENAI));
  const sock = rawRequest(gw.port, OPENAI.path, OPENAI.headers, body.length);
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.on('error', () => {});
  let i = 0;
  const trickle = setInterval(() => { if (i < 20) sock.write(body[i++]); }, 600);
  try {
    await sleep(300);
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, k) =>
      send(OPENAI, okBody(OPENAI, { messages: [{ role: 'user', content: `fast ${k}` }] }))));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    // all answered while the slow client was still sending its first 20
    // bytes (12 s at one byte per 600 ms): nothing waited for it
    assert.ok(i < 20, `the 20 requests were answered only after the slow client's ${i} bytes`);
    await sleep(Math.max(0, 7000 - (Date.now() - t0)));
    assert.equal(got, '', 'the slow request got no answer: its body is not complete');
  } finally {
    clearInterval(trickle);
    sock.destroy();
  }
  await sleep(200);
  assert.equal(mock.requests.length, up0 + 20, 'the slow request never went upstream');
  assert.equal(rowCount(), rows0 + 20, 'exactly one row per completed request, none for the slow one');
});

const rssMB = (pid) => {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : 0;
};

test('a client that never reads a long stream: bounded memory, others served, settled on close', async (t) => {
  const rows0 = rowCount();
  const base = rssMB(gw.child.pid);
  // ~200k words: a ~50 MB SSE stream from the mock
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'long [[mock:words=200000]]' }] });
  const sock = rawRequest(gw.port, OPENAI.path, OPENAI.headers, Buffer.byteLength(body));
  sock.on('error', () => {});
  sock.write(body);
  let first = '';
  await new Promise((res) => sock.once('data', (d) => { first += d; res(); }));
  assert.match(first, /^HTTP\/1\.1 200/);
  sock.pause(); // never read again
  let peak = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 3000) {
    peak = Math.max(peak, rssMB(gw.child.pid));
    await sleep(100);
  }
  // others are served meanwhile
  const rs = await Promise.all(Array.from({ length: 5 }, () => send(OPENAI, okBody(OPENAI))));
  for (const r of rs) assert.equal(r.status, 200);
  peak = Math.max(peak, rssMB(gw.child.pid));
  t.diagnostic(`gateway RSS ${base.toFixed(1)} MB before, peak ${peak.toFixed(1)} MB while the stream is stuck`);
  assert.ok(peak - base < 100, `RSS grew by ${(peak - base).toFixed(1)} MB (base ${base.toFixed(1)}, peak ${peak.toFixed(1)})`);
  if (!process.env.ASAN_OPTIONS && !/asan/.test(process.env.COSTGATE_BIN || '')) assert.ok(peak < 200, `RSS ${peak} MB`);
  sock.destroy();
  // the abandoned stream settles: drained (bounded by drain_max_bytes) or estimated
  const rows = await waitRows(gw.ledger, "status='client_disconnected'", 1, 15000);
  assert.equal(rows.length, 1, 'the abandoned stream has exactly one row');
  assert.ok(rows[0].cost_total > 0, 'never priced at zero');
  assert.ok(rows[0].tok_input > 0 && rows[0].tok_output > 0);
  assert.equal(rowCount(), rows0 + 6);
});
