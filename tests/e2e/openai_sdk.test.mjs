// openai_sdk: the official `openai` npm SDK pointed at the gateway by changing
// only baseURL (and apiKey to a gateway key). Each call checks what the SDK
// parsed AND the one ledger row the call wrote (found by the
// x-costgate-request-id response header), with the cost checked to the
// nano-USD against prices written out by hand below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import {
  startMock, expectedChatUsage, mockAnswer, mockEmbedding, embeddingTokens, mockToolArguments,
} from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, cleanup } from '../lib/harness.mjs';

// Built-in prices (src/cost/prices.c) as integer nano-USD per token:
// $X per 1M tokens = X * 1000 nano-USD per token.
const GPT_4O_MINI = { input: 150, cached: 75, output: 600 };   // $0.15 in, $0.075 cached, $0.60 out / 1M
const O4_MINI = { input: 1100, cached: 275, output: 4400 };     // $1.10 in, $0.275 cached, $4.40 out / 1M
const TEXT_EMBEDDING_3_SMALL = 20;                              // $0.02 / 1M, embedding axis

let mock, gw, client, stopped = false;
let upstreamCalls = 0; // calls that reached the provider: each must leave exactly one row

before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port });
  client = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
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

// Checks the row's tokens against the usage the mock reports and the cost
// against the hand-computed price (OpenAI: prompt includes cached,
// completion includes reasoning).
function checkChatRow(row, usage, price, { model, stream }) {
  const cached = usage.prompt_tokens_details.cached_tokens;
  const reasoning = usage.completion_tokens_details.reasoning_tokens;
  assert.equal(row.status, 'ok');
  assert.equal(row.http_status, 200);
  assert.equal(row.upstream_status, 200);
  assert.equal(row.kind, 'chat');
  assert.equal(row.api, 'openai');
  assert.equal(row.provider, 'openai');
  assert.equal(row.model_requested, model);
  assert.equal(row.stream, stream ? 1 : 0);
  assert.equal(row.estimated, 0);
  assert.equal(row.unpriced, 0);
  assert.equal(row.tenant, 't1');
  assert.equal(row.tok_input, usage.prompt_tokens - cached);
  assert.equal(row.tok_cached_read, cached);
  assert.equal(row.tok_output, usage.completion_tokens);
  assert.equal(row.tok_reasoning, reasoning);
  const wantIn = (usage.prompt_tokens - cached) * price.input + cached * price.cached;
  const wantOut = usage.completion_tokens * price.output;
  assert.equal(row.cost_input, wantIn);
  assert.equal(row.cost_output, wantOut);
  assert.equal(row.cost_embedding, 0);
  assert.equal(row.cost_total, wantIn + wantOut);
}

test('chat non-stream: SDK-parsed completion, one exact ledger row', async () => {
  const body = { model: 'gpt-4o-mini', messages: user('What is a cost gateway?') };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  upstreamCalls++;
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, 'gpt-4o-mini');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, mockAnswer('What is a cost gateway?'));
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.deepEqual(data.usage, expectedChatUsage(body));
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkChatRow(row, data.usage, GPT_4O_MINI, { model: 'gpt-4o-mini', stream: false });
  assert.equal(response.headers.get('x-costgate-cost-usd'), (row.cost_total / 1e9).toFixed(9));
});

test('.asResponse(): the raw Response carries the gateway headers and the provider body', async () => {
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'terse' }, ...user('raw please')] };
  const res = await client.chat.completions.create(body).asResponse();
  upstreamCalls++;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-costgate-model'), 'gpt-4o-mini');
  assert.equal(res.headers.get('x-costgate-cache'), 'miss');
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/, "the provider's request id passes through");
  const json = await res.json();
  assert.equal(json.choices[0].message.content, mockAnswer('raw please'));
  assert.deepEqual(json.usage, expectedChatUsage(body));
  const row = rowFor(res.headers.get('x-costgate-request-id'));
  checkChatRow(row, json.usage, GPT_4O_MINI, { model: 'gpt-4o-mini', stream: false });
  assert.equal(res.headers.get('x-costgate-cost-usd'), (row.cost_total / 1e9).toFixed(9));
});

test('chat stream (create stream:true): chunks assemble the answer, no usage chunk when not asked', async () => {
  const text = 'Tell me a streamed story';
  const body = { model: 'gpt-4o-mini', stream: true, messages: user(text) };
  const { data: stream, response } = await client.chat.completions.create(body).withResponse();
  upstreamCalls++;
  assert.match(response.headers.get('content-type'), /text\/event-stream/);
  let content = '';
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.ok(chunk.choices.length > 0, 'a usage-only chunk reached a client that did not ask for it');
    assert.ok(!chunk.usage, 'no usage on chunks when include_usage was not asked');
    content += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.ok(chunks >= 3);
  assert.equal(content, mockAnswer(text));
  assert.equal(finish, 'stop');
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  // the gateway asked the provider for usage on the client's behalf
  assert.equal(mock.requests.at(-1).body.stream_options.include_usage, true);
  checkChatRow(row, expectedChatUsage(body), GPT_4O_MINI, { model: 'gpt-4o-mini', stream: true });
});

test('chat stream with stream_options.include_usage: the SDK sees the usage chunk', async () => {
  const text = 'usage please [[mock:cached=64]]';
  const body = { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: user(text) };
  const { data: stream, response } = await client.chat.completions.create(body).withResponse();
  upstreamCalls++;
  let content = '';
  const usages = [];
  for await (const chunk of stream) {
    if (chunk.usage) usages.push(chunk);
    for (const c of chunk.choices) content += c.delta.content ?? '';
  }
  assert.equal(content, mockAnswer(text));
  assert.equal(usages.length, 1, 'exactly one usage chunk');
  assert.deepEqual(usages[0].choices, []);
  assert.deepEqual(usages[0].usage, expectedChatUsage(body));
  assert.equal(usages[0].usage.prompt_tokens_details.cached_tokens, 64);
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkChatRow(row, usages[0].usage, GPT_4O_MINI, { model: 'gpt-4o-mini', stream: true });
});

test('chat.completions.stream() helper: content events and finalChatCompletion()', async () => {
  // The helper hides the HTTP response, so the request id is read by a fetch
  // spy passed to the client (the SDK's documented `fetch` option).
  const ids = [];
  const spy = new OpenAI({
    apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0,
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      ids.push(res.headers.get('x-costgate-request-id'));
      return res;
    },
  });
  const text = 'helper stream please';
  const body = { model: 'gpt-4o-mini', messages: user(text) };
  const runner = spy.chat.completions.stream(body);
  let deltas = '';
  runner.on('content', (delta) => { deltas += delta; });
  const final = await runner.finalChatCompletion();
  upstreamCalls++;
  assert.equal(deltas, mockAnswer(text));
  assert.equal(final.choices[0].message.content, mockAnswer(text));
  assert.equal(final.choices[0].message.role, 'assistant');
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.equal(final.model, 'gpt-4o-mini');
  assert.equal(ids.length, 1);
  const row = rowFor(ids[0]);
  checkChatRow(row, expectedChatUsage({ ...body, stream: true }), GPT_4O_MINI, { model: 'gpt-4o-mini', stream: true });
});

test('embeddings: the SDK default (base64 on the wire) decodes through the gateway; embedding axis', async () => {
  const input = ['the quick brown fox', 'jumps over the lazy dog'];
  const { data, response } = await client.embeddings.create({ model: 'text-embedding-3-small', input }).withResponse();
  upstreamCalls++;
  assert.equal(mock.requests.at(-1).body.encoding_format, 'base64', 'SDK default reached the provider unchanged');
  assert.equal(data.object, 'list');
  assert.equal(data.data.length, 2);
  for (let i = 0; i < input.length; i++) {
    assert.equal(data.data[i].index, i);
    assert.ok(Array.isArray(data.data[i].embedding), 'decoded to numbers');
    assert.deepEqual(data.data[i].embedding, Array.from(mockEmbedding(input[i])));
  }
  const tokens = embeddingTokens(input);
  assert.deepEqual(data.usage, { prompt_tokens: tokens, total_tokens: tokens });
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  assert.equal(row.kind, 'embeddings');
  assert.equal(row.status, 'ok');
  assert.equal(row.estimated, 0);
  assert.equal(row.tok_embedding, tokens);
  assert.equal(row.tok_input, 0);
  assert.equal(row.tok_output, 0);
  assert.equal(row.cost_embedding, tokens * TEXT_EMBEDDING_3_SMALL);
  assert.equal(row.cost_input, 0);
  assert.equal(row.cost_output, 0);
  assert.equal(row.cost_total, tokens * TEXT_EMBEDDING_3_SMALL);
});

test('models.list(): OpenAI-shaped list of served, priced models; no ledger row', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  const page = await client.models.list();
  const ids = [];
  for await (const m of page) {
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'openai');
    ids.push(m.id);
  }
  assert.ok(ids.includes('gpt-4o-mini'));
  assert.ok(ids.includes('o4-mini'));
  assert.ok(ids.includes('text-embedding-3-small'));
  assert.ok(!ids.some((id) => id.startsWith('claude')), 'Anthropic models are not listed to an OpenAI client');
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
  assert.equal(mock.requests.length, nUp, 'served by the gateway, not proxied');
  assert.equal(rowCount(), before);
});

test('cached tokens are priced at the cached rate', async () => {
  const body = { model: 'gpt-4o-mini', messages: user('long shared prefix [[mock:cached=1536]]') };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  upstreamCalls++;
  assert.equal(data.usage.prompt_tokens_details.cached_tokens, 1536);
  assert.deepEqual(data.usage, expectedChatUsage(body));
  const row = rowFor(response.headers.get('x-costgate-request-id'));
  checkChatRow(row, data.usage, GPT_4O_MINI, { model: 'gpt-4o-mini', stream: false });
  const p = data.usage.prompt_tokens;
  const c = data.usage.completion_tokens;
  assert.equal(row.cost_total, (p - 1536) * 150 + 1536 * 75 + c * 600);
});

test('reasoning tokens (o4-mini) are inside output, billed once; cached too', async () => {
  for (const stream of [false, true]) {
    const body = { model: 'o4-mini', messages: user('think hard [[mock:reasoning=300,cached=128]]') };
    let usage, id;
    if (stream) {
      const { data: s, response } = await client.chat.completions
        .create({ ...body, stream: true, stream_options: { include_usage: true } }).withResponse();
      for await (const chunk of s) if (chunk.usage) usage = chunk.usage;
      id = response.headers.get('x-costgate-request-id');
    } else {
      const { data, response } = await client.chat.completions.create(body).withResponse();
      assert.equal(data.choices[0].message.content, mockAnswer('think hard [[mock:reasoning=300,cached=128]]'));
      usage = data.usage;
      id = response.headers.get('x-costgate-request-id');
    }
    upstreamCalls++;
    assert.equal(usage.completion_tokens_details.reasoning_tokens, 300);
    assert.deepEqual(usage, expectedChatUsage(body));
    const row = rowFor(id);
    checkChatRow(row, usage, O4_MINI, { model: 'o4-mini', stream });
    assert.equal(row.tok_reasoning, 300);
    assert.equal(row.tok_output, usage.completion_tokens, 'reasoning is part of output, not added to it');
    // 8 answer words + 300 reasoning, each at $4.40/1M, once
    assert.equal(usage.completion_tokens, 308);
    assert.equal(row.cost_output, 308 * 4400);
    assert.equal(row.cost_total, (usage.prompt_tokens - 128) * 1100 + 128 * 275 + 308 * 4400);
  }
});

test('tool calls, non-stream and stream', async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
    },
  }];
  const wantArgs = JSON.stringify(mockToolArguments(tools[0].function.parameters));
  assert.equal(wantArgs, '{"city":"mock","days":1,"unit":"c"}');
  const body = { model: 'gpt-4o-mini', tools, messages: user('weather in Paris? [[mock:tool]]') };

  const { data, response } = await client.chat.completions.create(body).withResponse();
  upstreamCalls++;
  const msg = data.choices[0].message;
  assert.equal(data.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].type, 'function');
  assert.equal(msg.tool_calls[0].function.name, 'get_weather');
  assert.equal(msg.tool_calls[0].function.arguments, wantArgs);
  assert.deepEqual(data.usage, expectedChatUsage(body));
  checkChatRow(rowFor(response.headers.get('x-costgate-request-id')), data.usage, GPT_4O_MINI, { model: 'gpt-4o-mini', stream: false });

  const sbody = { ...body, stream: true };
  const { data: stream, response: sres } = await client.chat.completions.create(sbody).withResponse();
  upstreamCalls++;
  let name = '', args = '', callId = null, finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const tc of c.delta.tool_calls ?? []) {
      assert.equal(tc.index, 0);
      callId = tc.id ?? callId;
      name += tc.function?.name ?? '';
      args += tc.function?.arguments ?? '';
    }
    finish = c.finish_reason ?? finish;
  }
  assert.match(callId, /^call_/);
  assert.equal(name, 'get_weather');
  assert.equal(args, wantArgs);
  assert.equal(finish, 'tool_calls');
  checkChatRow(rowFor(sres.headers.get('x-costgate-request-id')), expectedChatUsage(sbody), GPT_4O_MINI, { model: 'gpt-4o-mini', stream: true });
});

test('bad gateway key -> AuthenticationError (401); nothing goes upstream, no row', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  const bad = new OpenAI({ apiKey: 'cg-not-a-key', baseURL: `${gw.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: user('hi') }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err.constructor.name}`);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_api_key');
    assert.ok(!err.message.includes('cg-not-a-key'), 'the key is never echoed');
    return true;
  });
  await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
  assert.equal(mock.requests.length, nUp);
  assert.equal(rowCount(), before);
});

test('model errors: unpriced -> BadRequestError model_not_priced; not served -> NotFoundError; both name the model', async () => {
  const before = rowCount();
  const nUp = mock.requests.length;
  // matches the openai provider's "unpriced-*" pattern but has no price
  await assert.rejects(client.chat.completions.create({ model: 'unpriced-model-1', messages: user('hi') }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err.constructor.name}`);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'model_not_priced');
    assert.equal(err.param, 'model');
    assert.match(err.message, /unpriced-model-1/);
    return true;
  });
  // priced, but no OpenAI-API provider serves it
  await assert.rejects(client.chat.completions.create({ model: 'claude-haiku-4-5', messages: user('hi') }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err.constructor.name}`);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /claude-haiku-4-5/);
    return true;
  });
  // neither priced nor served: routing runs before admission (see
  // src/pipeline/engine.c), so a typo'd model is a 404 whatever the pricing
  await assert.rejects(client.embeddings.create({ model: 'no-such-model-xyz', input: 'hi' }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err.constructor.name}`);
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /no-such-model-xyz/);
    return true;
  });
  assert.equal(mock.requests.length, nUp, 'rejected before the provider call');
  assert.equal(rowCount(), before);
});

test('upstream 429 -> RateLimitError; its row costs 0 with status upstream_error', async () => {
  const body = { model: 'gpt-4o-mini', messages: user('busy [[mock:status=429,retry_after=7]]') };
  let id;
  await assert.rejects(client.chat.completions.create(body), (err) => {
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err.constructor.name}`);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /Rate limit reached for gpt-4o-mini/);
    assert.equal(err.headers.get('retry-after'), '7', 'retry-after passes through');
    id = err.headers.get('x-costgate-request-id');
    return true;
  });
  upstreamCalls++;
  const row = rowFor(id);
  assert.equal(row.status, 'upstream_error');
  assert.equal(row.http_status, 429);
  assert.equal(row.upstream_status, 429);
  assert.equal(row.cost_total, 0);
  assert.equal(row.cost_input + row.cost_output, 0);
  assert.equal(row.tok_input + row.tok_output, 0);
  assert.equal(row.estimated, 0);

  // the same through a stream: the error comes before any byte of stream
  await assert.rejects(client.chat.completions.create({ ...body, stream: true }), (err) => {
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err.constructor.name}`);
    const r = rowFor(err.headers.get('x-costgate-request-id'));
    assert.equal(r.status, 'upstream_error');
    assert.equal(r.stream, 1);
    assert.equal(r.cost_total, 0);
    return true;
  });
  upstreamCalls++;
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
  assert.ok(rows.every((r) => r.api === 'openai' && r.tenant === 't1'));
});
