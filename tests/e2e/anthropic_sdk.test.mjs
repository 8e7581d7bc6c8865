// anthropic_sdk: the official `@anthropic-ai/sdk` npm SDK pointed at the
// gateway by changing only baseURL (and apiKey to a gateway key). Each call
// checks what the SDK parsed AND the one ledger row the call wrote (found by
// the x-costgate-request-id response header), with the cost checked to the
// nano-USD against prices written out by hand below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, expectedMessagesUsage, mockAnswer } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, cleanup } from '../lib/harness.mjs';

// Built-in prices (src/cost/prices.c) as integer nano-USD per token
// ($X per 1M tokens = X * 1000 nano-USD per token). Anthropic cache rates are
// multiples of the input price: read 0.1x, 5 min write 1.25x, 1 h write 2x.
const HAIKU_4_5 = {           // claude-haiku-4-5: $1 in, $5 out / 1M
  input: 1000,
  cacheRead: 100,             // 0.1  x $1    = $0.10 / 1M
  write5m: 1250,              // 1.25 x $1    = $1.25 / 1M
  write1h: 2000,              // 2    x $1    = $2.00 / 1M
  output: 5000,
};
const OPUS_4_5 = {            // claude-opus-4-5: $5 in, $25 out / 1M
  input: 5000,
  cacheRead: 500,             // 0.1  x $5 = $0.50 / 1M
  write5m: 6250,              // 1.25 x $5 = $6.25 / 1M
  write1h: 10000,             // 2    x $5 = $10 / 1M
  output: 25000,
};
const MODEL = 'claude-haiku-4-5'; // not on the SDK's deprecation list (no console warnings)

let mock, gw, client, stopped = false;
let upstreamCalls = 0; // calls that reached the provider: each must leave exactly one row

before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port });
  client = new Anthropic({ apiKey: KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => {
  if (!stopped) await gw.kill('SIGKILL');
  await mock.close();
  cleanup(gw.dir);
});

function rowFor(id) {
  assert.match(id, /^req_[0-9a-f]{24}$/, 'x-costgate-request-id header');
  const rows = ledgerRows(gw.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1, `exactly one ledger row for ${id}`);
  return rows[0];
}

const rowCount = () => ledgerRows(gw.ledger).length;
const user = (content) => [{ role: 'user', content }];

// Anthropic: input_tokens EXCLUDES cache reads and writes; each class has its rate.
function checkMessagesRow(row, usage, price, { model = MODEL, stream }) {
  const w5 = usage.cache_creation?.ephemeral_5m_input_tokens ?? 0;
  const w1h = usage.cache_creation?.ephemeral_1h_input_tokens ?? 0;
  const read = usage.cache_read_input_tokens ?? 0;
  assert.equal(row.status, 'ok');
  assert.equal(row.http_status, 200);
  assert.equal(row.upstream_status, 200);
  assert.equal(row.kind, 'messages');
  assert.equal(row.api, 'anthropic');
  assert.equal(row.provider, 'anthropic');
  assert.equal(row.model_requested, model);
  assert.equal(row.stream, stream ? 1 : 0);
  assert.equal(row.estimated, 0);
  assert.equal(row.unpriced, 0);
  assert.equal(row.tenant, 't1');
  assert.equal(row.tok_input, usage.input_tokens);
  assert.equal(row.tok_cached_read, read);
  assert.equal(row.tok_cache_write_5m, w5);
  assert.equal(row.tok_cache_write_1h, w1h);
  assert.equal(row.tok_output, usage.output_tokens);
  const wantIn = usage.input_tokens * price.input + read * price.cacheRead + w5 * price.write5m + w1h * price.write1h;
  const wantOut = usage.output_tokens * price.output;
  assert.equal(row.cost_input, wantIn);
  assert.equal(row.cost_output, wantOut);
  assert.equal(row.cost_total, wantIn + wantOut);
}

test('messages.create non-stream: SDK-parsed message, one exact ledger row', async () => {
  const text = 'What does a cost gateway do?';
  const body = { model: MODEL, max_tokens: 256, system: 'Be brief.', messages: user(text) };
  const { data, response } = await client.messages.create(body).withResponse();
  upstreamCalls++;
  assert.equal(response.status, 200);
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.equal(data.model, MODEL);
  assert.equal(data.stop_reason, 'end_turn');
  assert.equal(data.content.length, 1);
  assert.equal(data.content[0].type, 'text');
  assert.equal(data.content[0].text, mockAnswer(text));
  assert.deepEqual(data.usage, expectedMessagesUsage(body));
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkMessagesRow(row, data.usage, HAIKU_4_5, { stream: false });
  assert.equal(response.headers.get('x-costgate-cost-usd'), (row.cost_total / 1e9).toFixed(9));
  const up = mock.requests.at(-1);
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream-secret');
  assert.ok(!JSON.stringify(up.headers).includes(KEY), 'the gateway key never goes upstream');
});

test('messages.stream(): text events and finalMessage()', async () => {
  const text = 'Stream me a short answer';
  const body = { model: MODEL, max_tokens: 256, messages: user(text) };
  const stream = client.messages.stream(body);
  let texts = '';
  let nText = 0;
  stream.on('text', (delta) => { texts += delta; nText++; });
  const { response } = await stream.withResponse();
  const final = await stream.finalMessage();
  upstreamCalls++;
  assert.match(response.headers.get('content-type'), /text\/event-stream/);
  assert.ok(nText >= 3, 'text arrives in several events');
  assert.equal(texts, mockAnswer(text));
  assert.equal(await stream.finalText(), mockAnswer(text));
  assert.equal(final.content[0].text, mockAnswer(text));
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, expectedMessagesUsage(body).output_tokens);
  assert.equal(final.usage.input_tokens, expectedMessagesUsage(body).input_tokens);
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkMessagesRow(row, final.usage, HAIKU_4_5, { stream: true });
});

test('messages.create({stream:true}): raw events in order', async () => {
  const text = 'raw events please';
  const body = { model: MODEL, max_tokens: 256, stream: true, messages: user(text) };
  const { data: stream, response } = await client.messages.create(body).withResponse();
  const types = [];
  let content = '';
  let start, delta;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'message_start') start = ev.message;
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') content += ev.delta.text;
    if (ev.type === 'message_delta') delta = ev;
  }
  upstreamCalls++;
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
  assert.equal(types.filter((t) => t === 'message_delta').length, 1);
  assert.equal(content, mockAnswer(text));
  assert.equal(delta.delta.stop_reason, 'end_turn');
  const want = expectedMessagesUsage(body);
  assert.equal(start.usage.input_tokens, want.input_tokens);
  assert.equal(delta.usage.output_tokens, want.output_tokens);
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkMessagesRow(row, want, HAIKU_4_5, { stream: true });
});

test('cache read + 5m/1h cache writes priced exactly, stream and not', async () => {
  const text = 'big cached prompt [[mock:cached=4000,cache_write=1200,cache_write_1h=800]]';
  for (const [model, price] of [[MODEL, HAIKU_4_5], ['claude-opus-4-5', OPUS_4_5]]) {
    for (const stream of [false, true]) {
      const body = { model, max_tokens: 512, messages: user(text) };
      let usage, id;
      if (stream) {
        const s = client.messages.stream(body);
        const { response } = await s.withResponse();
        usage = (await s.finalMessage()).usage;
        id = response.headers.get('x-costgate-request-id');
      } else {
        const { data, response } = await client.messages.create(body).withResponse();
        usage = data.usage;
        id = response.headers.get('x-costgate-request-id');
      }
      upstreamCalls++;
      const want = expectedMessagesUsage(body);
      assert.equal(usage.input_tokens, want.input_tokens, 'input_tokens excludes cache read/write');
      assert.equal(usage.cache_read_input_tokens, 4000);
      assert.equal(usage.cache_creation_input_tokens, 2000);
      assert.deepEqual(usage.cache_creation, { ephemeral_5m_input_tokens: 1200, ephemeral_1h_input_tokens: 800 });
      assert.equal(usage.output_tokens, want.output_tokens);
      const row = rowFor(id);
      checkMessagesRow(row, usage, price, { model, stream });
      // spelled out: nothing counted twice (1200 + 800 are not also in input or in a "creation" total)
      assert.equal(row.cost_total,
        usage.input_tokens * price.input + 4000 * price.cacheRead + 1200 * price.write5m + 800 * price.write1h +
        usage.output_tokens * price.output, `${model} stream=${stream}`);
    }
  }
});

test('models.list(): Anthropic-shaped list of chat models; no ledger row', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  const page = await client.models.list();
  assert.equal(page.has_more, false);
  const ids = [];
  for await (const m of page) {
    assert.equal(m.type, 'model');
    assert.equal(typeof m.display_name, 'string');
    assert.equal(typeof m.created_at, 'string');
    ids.push(m.id);
  }
  assert.ok(ids.includes('claude-haiku-4-5'));
  assert.ok(ids.includes('claude-opus-4-5'));
  assert.ok(ids.every((id) => id.startsWith('claude')), 'only models an Anthropic provider serves');
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(page.first_id, ids[0]);
  assert.equal(page.last_id, ids.at(-1));
  assert.equal(mock.requests.length, nUp, 'served by the gateway, not proxied');
  assert.equal(rowCount(), before);
});

test('bad gateway key -> AuthenticationError (401); nothing upstream, no row', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  const bad = new Anthropic({ apiKey: 'cg-not-a-key', baseURL: gw.url, maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: MODEL, max_tokens: 10, messages: user('hi') }), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err.constructor.name}`);
    assert.equal(err.status, 401);
    assert.equal(err.error?.error?.type, 'authentication_error');
    assert.ok(!err.message.includes('cg-not-a-key'), 'the key is never echoed');
    return true;
  });
  await assert.rejects(bad.models.list(), Anthropic.AuthenticationError);
  assert.equal(mock.requests.length, nUp);
  assert.equal(rowCount(), before);
});

test('missing max_tokens -> BadRequestError naming max_tokens; wrong-API model -> NotFoundError', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  await assert.rejects(client.messages.create({ model: MODEL, messages: user('hi') }), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError, `got ${err.constructor.name}`);
    assert.equal(err.status, 400);
    assert.equal(err.error?.error?.type, 'invalid_request_error');
    assert.match(err.error?.error?.message, /max_tokens/);
    return true;
  });
  // priced, but only an OpenAI-API provider serves it
  await assert.rejects(client.messages.create({ model: 'gpt-4o-mini', max_tokens: 10, messages: user('hi') }), (err) => {
    assert.ok(err instanceof Anthropic.NotFoundError, `got ${err.constructor.name}`);
    assert.equal(err.error?.error?.type, 'not_found_error');
    assert.match(err.message, /gpt-4o-mini/);
    return true;
  });
  assert.equal(mock.requests.length, nUp, 'rejected before the provider call');
  assert.equal(rowCount(), before);
});

test('upstream 529 / 500 -> InternalServerError (OverloadedError for 529); rows cost 0, upstream_error', async () => {
  const cases = [
    [529, Anthropic.OverloadedError, 'overloaded_error', false],
    [500, Anthropic.InternalServerError, 'api_error', false],
    [529, Anthropic.OverloadedError, 'overloaded_error', true],
  ];
  for (const [status, Cls, type, stream] of cases) {
    const body = { model: MODEL, max_tokens: 64, stream, messages: user(`busy [[mock:status=${status}]]`) };
    await assert.rejects(client.messages.create(body), (err) => {
      assert.ok(err instanceof Cls, `${status}: got ${err.constructor.name}`);
      assert.ok(err instanceof Anthropic.InternalServerError);
      assert.ok(err instanceof Anthropic.APIError);
      assert.equal(err.status, status);
      assert.equal(err.error?.error?.type, type);
      const row = rowFor(err.headers.get('x-costgate-request-id'));
      assert.equal(row.status, 'upstream_error');
      assert.equal(row.http_status, status);
      assert.equal(row.upstream_status, status);
      assert.equal(row.stream, stream ? 1 : 0);
      assert.equal(row.cost_total, 0);
      assert.equal(row.tok_input + row.tok_output + row.tok_cached_read, 0);
      assert.equal(row.estimated, 0);
      return true;
    });
    upstreamCalls++;
  }
});

test('gateway stops cleanly; ledger holds exactly one row per upstream call, no duplicates', async () => {
  await gw.stop(); // fails on a non-zero exit or any sanitizer report
  stopped = true;
  const dups = execFileSync('sqlite3', [gw.ledger,
    'SELECT request_id, attempt, count(*) FROM ledger GROUP BY 1,2 HAVING count(*)>1'], { encoding: 'utf8' });
  assert.equal(dups.trim(), '');
  const rows = ledgerRows(gw.ledger);
  assert.equal(rows.length, upstreamCalls);
  assert.equal(mock.requests.length, upstreamCalls, 'every upstream request is in the ledger');
  assert.ok(rows.every((r) => r.api === 'anthropic' && r.kind === 'messages' && r.tenant === 't1'));
});
