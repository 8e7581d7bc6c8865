// cache_sdk: exact-cache hits through the official SDKs (npm `openai` and
// `@anthropic-ai/sdk`), unchanged except baseURL and apiKey. A cached
// answer is replayed as the API's own SSE stream when the request streams:
// both SDKs must parse it, in stream and non-stream mode and through their
// stream helpers. For each: the deltas concatenate to the stored text, the
// final usage and finish/stop reason are there, tool calls and thinking
// blocks round-trip, and every hit's ledger row is zero-cost with the miss's
// cost as its baseline. A streamed miss is stored and served the same way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, expectedChatUsage, expectedMessagesUsage, mockAnswer, mockToolArguments } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, cleanup } from '../lib/harness.mjs';

// Built-in prices (src/cost/prices.c), nano-USD per token.
const GPT_4O_MINI = { input: 150, output: 600 };
const HAIKU_4_5 = { input: 1000, output: 5000 };

let mock, gw, openai, anthropic;
const ids = []; // request ids seen by the fetch spy, in order

before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  gw = await startGateway({ mockPort: mock.port, extra: 'cache:\n  store_tool_calls: true\n' });
  const spy = async (url, init) => {
    const res = await fetch(url, init);
    ids.push({ id: res.headers.get('x-costgate-request-id'), cache: res.headers.get('x-costgate-cache') });
    return res;
  };
  openai = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0, fetch: spy });
  anthropic = new Anthropic({ apiKey: KEY, baseURL: gw.url, maxRetries: 0, fetch: spy });
});
after(async () => {
  await gw.stop();
  await mock.close();
  cleanup(gw.dir);
});

const uniq = (s) => `${s} ${Math.random().toString(36).slice(2, 8)}`;
const last = () => ids.at(-1);
const row = (id) => {
  const rows = ledgerRows(gw.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1);
  return rows[0];
};
function checkHitRow(id, baseline, stream) {
  const r = row(id);
  assert.equal(r.cache, 'exact');
  assert.equal(r.cost_total, 0);
  assert.equal(r.baseline_cost, baseline);
  assert.equal(r.stream, stream ? 1 : 0);
  assert.equal(r.status, 'ok');
}
async function upstream(fn) {
  const n0 = mock.requests.length;
  await fn();
  return mock.requests.length - n0;
}

test('OpenAI SDK: a cached answer as completion, stream, usage stream and stream helper', async () => {
  const text = uniq('Cache me through the SDK');
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] };
  const u = expectedChatUsage(body);
  const cost = u.prompt_tokens * GPT_4O_MINI.input + u.completion_tokens * GPT_4O_MINI.output;
  const want = mockAnswer(text);
  const calls = await upstream(async () => {
    const miss = await openai.chat.completions.create(body);
    assert.equal(last().cache, 'miss');
    assert.equal(miss.choices[0].message.content, want);

    const hit = await openai.chat.completions.create(body);
    assert.equal(last().cache, 'exact');
    assert.deepEqual(hit, miss);
    checkHitRow(last().id, cost, false);

    // stream: true, no usage asked
    const stream = await openai.chat.completions.create({ ...body, stream: true });
    let content = '', finish = null, chunks = 0, sawUsage = false;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.id, miss.id);
      assert.equal(chunk.model, 'gpt-4o-mini');
      if (chunk.usage) sawUsage = true;
      content += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(chunks >= 3);
    assert.equal(content, want);
    assert.equal(finish, 'stop');
    assert.equal(sawUsage, false);
    assert.equal(last().cache, 'exact');
    checkHitRow(last().id, cost, true);

    // with include_usage: the final usage chunk
    const s2 = await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let c2 = '', usage = null;
    for await (const chunk of s2) {
      c2 += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(c2, want);
    assert.deepEqual(usage, u);

    // the stream helper
    const runner = openai.chat.completions.stream(body);
    let deltas = '';
    runner.on('content', (d) => { deltas += d; });
    const final = await runner.finalChatCompletion();
    assert.equal(deltas, want);
    assert.equal(final.choices[0].message.content, want);
    assert.equal(final.choices[0].message.role, 'assistant');
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(last().cache, 'exact');
  });
  assert.equal(calls, 1, 'one upstream call for five requests');
});

test('OpenAI SDK: a streamed miss is stored; a cached tool call replays through the helper', async () => {
  const text = uniq('stream first');
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] };
  let calls = await upstream(async () => {
    const s = await openai.chat.completions.create({ ...body, stream: true });
    let c = '';
    for await (const chunk of s) c += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(last().cache, 'miss');
    const hit = await openai.chat.completions.create(body);
    assert.equal(last().cache, 'exact');
    assert.equal(hit.choices[0].message.content, c);
    assert.deepEqual(hit.usage, expectedChatUsage(body));
  });
  assert.equal(calls, 1);

  const params = { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } };
  const tb = {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: uniq('weather please [[mock:tool]]') }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: params } }],
  };
  calls = await upstream(async () => {
    const miss = await openai.chat.completions.create(tb);
    assert.equal(miss.choices[0].finish_reason, 'tool_calls');
    const runner = openai.chat.completions.stream(tb);
    const final = await runner.finalChatCompletion();
    assert.equal(last().cache, 'exact');
    const tc = final.choices[0].message.tool_calls[0];
    assert.equal(tc.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(tc.function.arguments), mockToolArguments(params));
    assert.equal(tc.id, miss.choices[0].message.tool_calls[0].id);
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
  });
  assert.equal(calls, 1);
});

test('Anthropic SDK: a cached answer as message, stream and stream helper', async () => {
  const text = uniq('Cache me through the Anthropic SDK');
  const body = { model: 'claude-haiku-4-5', max_tokens: 128, messages: [{ role: 'user', content: text }] };
  const u = expectedMessagesUsage(body);
  const cost = u.input_tokens * HAIKU_4_5.input + u.output_tokens * HAIKU_4_5.output;
  const want = mockAnswer(text);
  const calls = await upstream(async () => {
    const miss = await anthropic.messages.create(body);
    assert.equal(last().cache, 'miss');
    const hit = await anthropic.messages.create(body);
    assert.equal(last().cache, 'exact');
    assert.deepEqual(hit, miss);
    checkHitRow(last().id, cost, false);

    const stream = await anthropic.messages.create({ ...body, stream: true });
    let textOut = '', stop = null, output = null, input = null;
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'message_start') input = ev.message.usage.input_tokens;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') textOut += ev.delta.text;
      if (ev.type === 'message_delta') {
        stop = ev.delta.stop_reason;
        output = ev.usage.output_tokens;
      }
    }
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(textOut, want);
    assert.equal(stop, 'end_turn');
    assert.equal(output, u.output_tokens);
    assert.equal(input, u.input_tokens);
    checkHitRow(last().id, cost, true);

    const s = anthropic.messages.stream(body);
    let texts = '';
    s.on('text', (d) => { texts += d; });
    const final = await s.finalMessage();
    assert.equal(texts, want);
    assert.equal(final.id, miss.id);
    assert.deepEqual(final.content, miss.content);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, u.output_tokens);
    assert.equal(final.usage.input_tokens, u.input_tokens);
    assert.equal(last().cache, 'exact');
  });
  assert.equal(calls, 1);
});

test('Anthropic SDK: streamed miss stored; thinking and tool_use blocks round-trip', async () => {
  const tools = [{ name: 'lookup', description: 'look up', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
  const body = {
    model: 'claude-haiku-4-5', max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    tools,
    messages: [{ role: 'user', content: uniq('think then call [[mock:tool]]') }],
  };
  const calls = await upstream(async () => {
    const s = anthropic.messages.stream(body);
    const miss = await s.finalMessage();
    assert.equal(last().cache, 'miss');
    assert.deepEqual(miss.content.map((b) => b.type), ['thinking', 'tool_use']);
    const hit = await anthropic.messages.create(body);
    assert.equal(last().cache, 'exact');
    assert.deepEqual(hit.content, miss.content);
    assert.equal(hit.stop_reason, 'tool_use');
    const s2 = anthropic.messages.stream(body);
    const again = await s2.finalMessage();
    assert.equal(last().cache, 'exact');
    assert.deepEqual(again.content, miss.content, 'thinking text, signature and tool input replayed');
    assert.deepEqual(again.content[1].input, mockToolArguments(tools[0].input_schema));
    assert.equal(again.usage.output_tokens, miss.usage.output_tokens);
  });
  assert.equal(calls, 1);
});
