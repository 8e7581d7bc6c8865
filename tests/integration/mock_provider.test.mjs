// Self-test of the mock provider (tests/mock/provider.mjs) with the OFFICIAL SDKs.
// Run: node --test tests/integration/mock_provider.test.mjs
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  startMock, mockAnswer, expectedChatUsage, expectedMessagesUsage, openaiPromptTokens,
  anthropicInputTokens, embeddingTokens, mockEmbedding, parseDirectives, countWords, textTokens,
  mockToolArguments, toolCallTokens,
} from '../mock/provider.mjs';

const PROVIDER = fileURLToPath(new URL('../mock/provider.mjs', import.meta.url));

let mock;
let base;
let openai;
let anthropic;

before(async () => {
  mock = await startMock({ port: 0 });
  base = `http://127.0.0.1:${mock.port}`;
  openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test-openai', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: base, apiKey: 'sk-ant-test', maxRetries: 0 });
});
after(async () => {
  await mock.close();
});
beforeEach(() => mock.reset());

const U = (content) => [{ role: 'user', content }];
const oaiHeaders = { authorization: 'Bearer k', 'content-type': 'application/json' };
const antHeaders = { 'x-api-key': 'k', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
async function post(path, body, headers) {
  const r = await fetch(base + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* raw */ }
  return { status: r.status, headers: r.headers, text, json };
}
function sseEvents(text) {
  return text.split('\n\n').filter(Boolean).map((f) => {
    const ev = /^event: (.*)$/m.exec(f);
    const data = /^data: (.*)$/m.exec(f);
    return { event: ev ? ev[1] : null, data: data ? data[1] : null };
  });
}

// ---------------------------------------------------------------------------- formulas

test('formula helpers are documented values', () => {
  assert.deepEqual(parseDirectives('hi [[mock:cached=5,tool,logprob=-0.25]] x [[mock:words=3]]'),
    { cached: 5, tool: 1, logprob: -0.25, words: 3 });
  assert.equal(textTokens(''), 0);
  assert.equal(textTokens('abcde'), 2);
  assert.equal(textTokens('é'), 1);
  // 3 + (3 + ceil(5/4)) + (3 + ceil(2/4))
  assert.equal(openaiPromptTokens({ messages: [{ role: 'system', content: 'hello' }, { role: 'user', content: 'hi' }] }), 3 + 5 + 4);
  // 3 + system(3 + 2) + user(3 + 1)
  assert.equal(anthropicInputTokens({ system: 'hello', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }), 3 + 5 + 4);
  assert.equal(mockAnswer('What is the capital of France?'), 'Mock answer to: What is the capital of');
  assert.equal(mockAnswer('hi', 5), 'Mock answer to: hi lorem');
  assert.equal(countWords(mockAnswer('x', 13)), 13);
  assert.equal(embeddingTokens(['abcd', 'abcde']), 3);
  assert.equal(embeddingTokens([1, 2, 3]), 3);
  assert.equal(embeddingTokens([[1, 2], [3]]), 3);
  // bag of words: case, order and punctuation do not matter
  assert.deepEqual(mockEmbedding('Capital of France?', 16), mockEmbedding('france capital OF', 16));
  assert.deepEqual(mockToolArguments({ type: 'object', properties: { city: { type: 'string' }, n: { type: 'integer' }, u: { enum: ['c', 'f'] } } }),
    { city: 'mock', n: 1, u: 'c' });
});

// ---------------------------------------------------------------------------- OpenAI chat

test('openai chat non-stream via SDK', async () => {
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'be brief' }, ...U('What is the capital of France?')] };
  const r = await openai.chat.completions.create(body).withResponse();
  const c = r.data;
  assert.match(c.id, /^chatcmpl-[A-Za-z0-9]{29}$/);
  assert.equal(c.object, 'chat.completion');
  assert.equal(typeof c.created, 'number');
  assert.equal(c.model, 'gpt-4o-mini');
  assert.match(c.system_fingerprint, /^fp_[0-9a-f]{10}$/);
  assert.equal(c.choices.length, 1);
  assert.deepEqual(c.choices[0].message, { role: 'assistant', content: mockAnswer('What is the capital of France?'), refusal: null, annotations: [] });
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.choices[0].logprobs, null);
  const P = 3 + (3 + 2) + (3 + 8);
  assert.deepEqual(c.usage, {
    prompt_tokens: P, completion_tokens: 8, total_tokens: P + 8,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });
  assert.deepEqual(c.usage, expectedChatUsage(body));
  assert.match(r.response.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  assert.equal(r.response.headers.get('content-type'), 'application/json');
  // recorded upstream request
  assert.equal(mock.requests.length, 1);
  const rec = mock.requests[0];
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, '/v1/chat/completions');
  assert.equal(rec.headers.authorization, 'Bearer sk-test-openai');
  assert.deepEqual(rec.body, body);
});

test('openai chat: max_tokens truncates with finish_reason length; stop sequences; n', async () => {
  const c = await openai.chat.completions.create({ model: 'gpt-4o', max_tokens: 3, messages: U('hello world') });
  assert.equal(c.choices[0].message.content, 'Mock answer to:');
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.equal(c.usage.completion_tokens, 3);
  const c2 = await openai.chat.completions.create({ model: 'gpt-4o', max_completion_tokens: 2, messages: U('hello world') });
  assert.equal(c2.choices[0].finish_reason, 'length');
  assert.equal(c2.usage.completion_tokens, 2);
  const c3 = await openai.chat.completions.create({ model: 'gpt-4o', stop: ['to:'], messages: U('hello world') });
  assert.equal(c3.choices[0].message.content, 'Mock answer ');
  assert.equal(c3.choices[0].finish_reason, 'stop');
  assert.equal(c3.usage.completion_tokens, 2);
  const c4 = await openai.chat.completions.create({ model: 'gpt-4o', n: 3, messages: U('hello world') });
  assert.equal(c4.choices.length, 3);
  assert.deepEqual(c4.choices.map((x) => x.index), [0, 1, 2]);
  assert.equal(c4.usage.completion_tokens, 24);
});

test('openai chat stream with include_usage: usage only on final chunk', async () => {
  const body = { model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, messages: U('Tell me a story [[mock:words=12]]') };
  const stream = await openai.chat.completions.create(body);
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  const first = chunks[0];
  assert.equal(first.object, 'chat.completion.chunk');
  assert.match(first.id, /^chatcmpl-/);
  assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '', refusal: null });
  assert.ok(chunks.every((c) => c.id === first.id));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, expectedChatUsage(body));
  assert.equal(last.usage.completion_tokens, 12);
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'earlier chunks carry usage:null');
  const fin = chunks.at(-2);
  assert.equal(fin.choices[0].finish_reason, 'stop');
  assert.deepEqual(fin.choices[0].delta, {});
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, mockAnswer('Tell me a story', 12));
  assert.equal(chunks.length, 1 + 12 + 1 + 1);
  // the SDK's stream helper accumulates it too
  const s2 = openai.chat.completions.stream({ ...body, stream: undefined });
  const final = await s2.finalChatCompletion();
  assert.equal(final.choices[0].message.content, mockAnswer('Tell me a story', 12));
});

test('openai chat stream without include_usage: no usage anywhere; raw SSE framing', async () => {
  const stream = await openai.chat.completions.create({ model: 'gpt-4o', stream: true, messages: U('hi') });
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  assert.ok(chunks.length > 2);
  for (const c of chunks) {
    assert.equal('usage' in c, false);
    assert.equal(c.choices.length, 1);
  }
  const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: oaiHeaders, body: JSON.stringify({ model: 'm', stream: true, messages: U('hi') }) });
  assert.equal(r.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const raw = await r.text();
  assert.ok(raw.startsWith('data: {"id":"chatcmpl-'));
  assert.ok(raw.endsWith('data: [DONE]\n\n'));
  assert.ok(!raw.includes('"usage"'));
});

test('openai logprobs and logprob=X', async () => {
  const c = await openai.chat.completions.create({ model: 'gpt-4o', logprobs: true, top_logprobs: 3, messages: U('hi there [[mock:words=4]]') });
  const lp = c.choices[0].logprobs;
  assert.equal(lp.refusal, null);
  assert.deepEqual(lp.content.map((x) => x.token), ['Mock', ' answer', ' to:', ' hi']);
  for (const e of lp.content) {
    assert.ok(e.logprob <= 0);
    assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(e.top_logprobs[1].logprob < e.top_logprobs[0].logprob);
  }
  const c2 = await openai.chat.completions.create({ model: 'gpt-4o', logprobs: true, messages: U('x [[mock:logprob=-0.75]]') });
  assert.ok(c2.choices[0].logprobs.content.every((e) => e.logprob === -0.75 && e.top_logprobs.length === 0));
  const s = await openai.chat.completions.create({ model: 'gpt-4o', stream: true, logprobs: true, top_logprobs: 2, messages: U('x [[mock:logprob=-1.5,words=3]]') });
  const lps = [];
  for await (const ch of s) for (const e of ch.choices[0]?.logprobs?.content ?? []) lps.push(e);
  assert.equal(lps.length, 3);
  assert.ok(lps.every((e) => e.logprob === -1.5 && e.top_logprobs.length === 2));
});

test('openai tool calls (non-stream and stream)', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } } }];
  const body = { model: 'gpt-4o', tools, messages: U('weather in Paris? [[mock:tool]]') };
  const c = await openai.chat.completions.create(body);
  const m = c.choices[0].message;
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  assert.match(m.tool_calls[0].id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(m.tool_calls[0].type, 'function');
  assert.equal(m.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'mock', days: 1 });
  assert.equal(c.usage.completion_tokens, toolCallTokens('get_weather', '{"city":"mock","days":1}'));
  assert.deepEqual(c.usage, expectedChatUsage(body));
  // without tools the directive is ignored
  const plain = await openai.chat.completions.create({ model: 'gpt-4o', messages: U('weather? [[mock:tool]]') });
  assert.equal(plain.choices[0].finish_reason, 'stop');
  // a tool result after the call ends the loop with a text answer (so runTools terminates)
  const follow = await openai.chat.completions.create({
    model: 'gpt-4o', tools,
    messages: [...body.messages, m, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '{"temp":21}' }],
  });
  assert.equal(follow.choices[0].finish_reason, 'stop');
  assert.equal(typeof follow.choices[0].message.content, 'string');
  // tool_choice "required" / a named function forces a call without the directive
  const forced = await openai.chat.completions.create({ model: 'gpt-4o', tools, tool_choice: 'required', messages: U('hi') });
  assert.equal(forced.choices[0].finish_reason, 'tool_calls');
  // stream via the SDK helper
  const st = openai.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
  const fin = await st.finalChatCompletion();
  assert.equal(fin.choices[0].finish_reason, 'tool_calls');
  assert.equal(fin.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(fin.choices[0].message.tool_calls[0].function.arguments), { city: 'mock', days: 1 });
  assert.deepEqual(fin.usage, expectedChatUsage(body));
});

// ---------------------------------------------------------------------------- embeddings, models

test('embeddings: SDK default base64 decodes to the same floats as encoding_format=float', async () => {
  const e64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'The quick brown fox' });
  assert.equal(mock.requests[0].body.encoding_format, 'base64');
  const ef = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'The quick brown fox', encoding_format: 'float' });
  assert.equal(e64.object, 'list');
  assert.equal(e64.model, 'text-embedding-3-small');
  assert.equal(e64.data[0].object, 'embedding');
  assert.equal(e64.data[0].index, 0);
  assert.equal(e64.data[0].embedding.length, 8);
  assert.deepEqual(Array.from(e64.data[0].embedding), ef.data[0].embedding);
  assert.deepEqual(ef.data[0].embedding, Array.from(mockEmbedding('The quick brown fox', 8)));
  const norm = Math.sqrt(ef.data[0].embedding.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5);
  assert.deepEqual(ef.usage, { prompt_tokens: 5, total_tokens: 5 });
  // array of strings, dimensions
  const many = await openai.embeddings.create({ model: 'text-embedding-3-large', input: ['a b', 'c d e', 'a b'], dimensions: 32 });
  assert.equal(many.data.length, 3);
  assert.deepEqual(many.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(many.data.every((d) => d.embedding.length === 32));
  assert.deepEqual(Array.from(many.data[0].embedding), Array.from(many.data[2].embedding));
  assert.deepEqual(many.usage, { prompt_tokens: embeddingTokens(['a b', 'c d e', 'a b']), total_tokens: 4 });
  // token arrays
  const tok = await openai.embeddings.create({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4, 5]], encoding_format: 'float' });
  assert.equal(tok.data.length, 2);
  assert.equal(tok.usage.prompt_tokens, 5);
  const tok1 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: [10, 20, 30], encoding_format: 'float' });
  assert.equal(tok1.data.length, 1);
  assert.equal(tok1.usage.prompt_tokens, 3);
  // validation
  const bad = await post('/v1/embeddings', { model: 'x' }, oaiHeaders);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.type, 'invalid_request_error');
});

test('models list: OpenAI and Anthropic shapes', async () => {
  const ids = [];
  for await (const m of openai.models.list()) {
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(typeof m.owned_by, 'string');
    ids.push(m.id);
  }
  assert.ok(ids.includes('gpt-4o-mini'));
  const one = await openai.models.retrieve('gpt-4o');
  assert.equal(one.id, 'gpt-4o');
  await assert.rejects(openai.models.retrieve('nope'), OpenAI.NotFoundError);
  const ant = [];
  for await (const m of anthropic.models.list({ limit: 3 })) ant.push(m);
  assert.ok(ant.length >= 4, 'auto-pagination walks has_more/last_id');
  assert.equal(new Set(ant.map((m) => m.id)).size, ant.length);
  for (const m of ant) {
    assert.equal(m.type, 'model');
    assert.match(m.id, /^claude-/);
    assert.equal(typeof m.display_name, 'string');
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT/);
  }
  const raw = await fetch(`${base}/v1/models`, { headers: antHeaders }).then((r) => r.json());
  assert.deepEqual(Object.keys(raw).sort(), ['data', 'first_id', 'has_more', 'last_id']);
  assert.equal(raw.first_id, raw.data[0].id);
  assert.equal(raw.last_id, raw.data.at(-1).id);
  const rawO = await fetch(`${base}/v1/models`, { headers: oaiHeaders }).then((r) => r.json());
  assert.equal(rawO.object, 'list');
});

// ---------------------------------------------------------------------------- Anthropic messages

test('anthropic messages non-stream via SDK', async () => {
  const body = { model: 'claude-sonnet-5-5', max_tokens: 256, system: 'You are terse.', messages: U('What is the capital of France?') };
  const r = await anthropic.messages.create(body).withResponse();
  const m = r.data;
  assert.match(m.id, /^msg_01[1-9A-HJ-NP-Za-km-z]{22}$/);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'claude-sonnet-5-5');
  assert.deepEqual(m.content, [{ type: 'text', text: mockAnswer('What is the capital of France?') }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  const I = 3 + (3 + 4) + (3 + 8);
  assert.deepEqual(m.usage, {
    input_tokens: I, cache_creation_input_tokens: 0, cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: 8, service_tier: 'standard',
  });
  assert.deepEqual(m.usage, expectedMessagesUsage(body));
  assert.match(r.response.headers.get('request-id'), /^req_011C/);
  const rec = mock.requests[0];
  assert.equal(rec.path, '/v1/messages');
  // @anthropic-ai/sdk >= 1.0 (API version 2026-10-21) sends the key as a Bearer token;
  // older SDKs and curl send x-api-key. The mock accepts both, like the real API.
  assert.equal(rec.headers.authorization, 'Bearer sk-ant-test');
  assert.equal(rec.headers['x-api-key'], undefined);
  assert.equal(rec.headers['anthropic-version'], '2026-10-21');
  const viaKey = await post('/v1/messages', { model: 'c', max_tokens: 5, messages: U('hi') }, antHeaders);
  assert.equal(viaKey.status, 200);
  assert.equal(mock.requests.at(-1).headers['x-api-key'], 'k');
  // max_tokens truncation and stop sequences
  const t = await anthropic.messages.create({ model: 'c', max_tokens: 2, messages: U('hello') });
  assert.equal(t.stop_reason, 'max_tokens');
  assert.equal(t.content[0].text, 'Mock answer');
  assert.equal(t.usage.output_tokens, 2);
  const s = await anthropic.messages.create({ model: 'c', max_tokens: 100, stop_sequences: ['to:'], messages: U('hello') });
  assert.equal(s.stop_reason, 'stop_sequence');
  assert.equal(s.stop_sequence, 'to:');
  assert.equal(s.content[0].text, 'Mock answer ');
  const n = await anthropic.messages.countTokens({ model: 'c', system: 'You are terse.', messages: U('What is the capital of France?') });
  assert.equal(n.input_tokens, I);
});

test('anthropic messages stream: exact event sequence and SDK helpers', async () => {
  const body = { model: 'claude-haiku-4-5', max_tokens: 100, messages: U('Stream please [[mock:words=5,cached=7]]') };
  const stream = anthropic.messages.stream(body);
  const seen = [];
  stream.on('streamEvent', (e) => seen.push(e.type));
  let text = '';
  stream.on('text', (d) => { text += d; });
  const final = await stream.finalMessage();
  assert.equal(text, mockAnswer('Stream please', 5));
  assert.deepEqual(final.content, [{ type: 'text', text: mockAnswer('Stream please', 5) }]);
  assert.equal(final.stop_reason, 'end_turn');
  assert.deepEqual(final.usage, expectedMessagesUsage(body));
  assert.equal(final.usage.output_tokens, 5);
  assert.equal(final.usage.cache_read_input_tokens, 7);
  assert.deepEqual(seen, ['message_start', 'content_block_start', ...Array(5).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
  // raw wire format (ping included, named events)
  const r = await fetch(`${base}/v1/messages`, { method: 'POST', headers: antHeaders, body: JSON.stringify({ ...body, stream: true }) });
  assert.equal(r.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.match(r.headers.get('request-id'), /^req_/);
  const evs = sseEvents(await r.text());
  assert.deepEqual(evs.map((e) => e.event), ['message_start', 'content_block_start', 'ping', ...Array(5).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
  for (const e of evs) assert.equal(JSON.parse(e.data).type, e.event);
  const start = JSON.parse(evs[0].data).message;
  assert.equal(start.usage.output_tokens, 1);
  assert.equal(start.usage.input_tokens, anthropicInputTokens(body));
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  const md = JSON.parse(evs.at(-2).data);
  assert.deepEqual(md, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5 } });
  // delta_usage=full adds the cumulative input/cache counters
  const full = await anthropic.messages.stream({ ...body, messages: U('x [[mock:delta_usage=full,cached=3]]') }).finalMessage();
  assert.equal(full.usage.cache_read_input_tokens, 3);
});

test('anthropic thinking and tool_use', async () => {
  const m = await anthropic.messages.create({ model: 'c', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: U('think [[mock:reasoning=6,words=4]]') });
  assert.equal(m.content.length, 2);
  assert.equal(m.content[0].type, 'thinking');
  assert.equal(countWords(m.content[0].thinking), 6);
  assert.equal(typeof m.content[0].signature, 'string');
  assert.equal(m.usage.output_tokens, 10);
  const st = await anthropic.messages.stream({ model: 'c', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 }, messages: U('think [[mock:reasoning=6,words=4]]') }).finalMessage();
  assert.equal(st.content[0].type, 'thinking');
  assert.equal(st.content[0].thinking, m.content[0].thinking);
  assert.equal(st.content[1].text, m.content[1].text);
  assert.equal(st.usage.output_tokens, 10);
  const tools = [{ name: 'lookup', description: 'd', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
  const t = await anthropic.messages.create({ model: 'c', max_tokens: 100, tools, messages: U('find it [[mock:tool]]') });
  assert.equal(t.stop_reason, 'tool_use');
  assert.equal(t.content[0].type, 'tool_use');
  assert.match(t.content[0].id, /^toolu_01/);
  assert.deepEqual(t.content[0].input, { q: 'mock' });
  const after = await anthropic.messages.create({
    model: 'c', max_tokens: 100, tools,
    messages: [...U('find it [[mock:tool]]'), { role: 'assistant', content: t.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: t.content[0].id, content: 'found' }] }],
  });
  assert.equal(after.stop_reason, 'end_turn');
  assert.equal(after.content[0].text, mockAnswer('found'));
  const any = await anthropic.messages.create({ model: 'c', max_tokens: 100, tools, tool_choice: { type: 'any' }, messages: U('hi') });
  assert.equal(any.stop_reason, 'tool_use');
  const ts = await anthropic.messages.stream({ model: 'c', max_tokens: 100, tools, messages: U('find it [[mock:tool]]') }).finalMessage();
  assert.deepEqual(ts.content[0].input, { q: 'mock' });
  assert.equal(ts.usage.output_tokens, t.usage.output_tokens);
});

// ---------------------------------------------------------------------------- directives

test('directive cached / cache_write / cache_write_1h / reasoning', async () => {
  const body = { model: 'gpt-4o', messages: U('hello [[mock:cached=1000,reasoning=50]]') };
  const c = await openai.chat.completions.create(body);
  assert.equal(c.usage.prompt_tokens_details.cached_tokens, 1000);
  assert.equal(c.usage.prompt_tokens, openaiPromptTokens(body) + 1000);
  assert.equal(c.usage.completion_tokens_details.reasoning_tokens, 50);
  assert.equal(c.usage.completion_tokens, 8 + 50);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  const abody = { model: 'c', max_tokens: 100, messages: U('hello [[mock:cached=900,cache_write=120,cache_write_1h=30]]') };
  const m = await anthropic.messages.create(abody);
  assert.equal(m.usage.input_tokens, anthropicInputTokens(abody));
  assert.equal(m.usage.cache_read_input_tokens, 900);
  assert.equal(m.usage.cache_creation_input_tokens, 150);
  assert.deepEqual(m.usage.cache_creation, { ephemeral_5m_input_tokens: 120, ephemeral_1h_input_tokens: 30 });
  // the same through the x-mock header
  const h = await post('/v1/chat/completions', { model: 'm', messages: U('hi') }, { ...oaiHeaders, 'x-mock': 'cached=4,words=2' });
  assert.equal(h.json.usage.prompt_tokens_details.cached_tokens, 4);
  assert.equal(h.json.choices[0].message.content, 'Mock answer');
  assert.deepEqual(h.json.usage, expectedChatUsage({ model: 'm', messages: U('hi') }, 'cached=4,words=2'));
});

test('directive status=429 / 500 / 503 / 529 in provider shapes', async () => {
  const e = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:status=429]]') }).catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError);
  assert.equal(e.status, 429);
  assert.equal(e.headers.get('retry-after'), '1');
  assert.equal(e.code, 'rate_limit_exceeded');
  const e5 = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:status=500]]') }).catch((x) => x);
  assert.ok(e5 instanceof OpenAI.InternalServerError);
  assert.equal(e5.type, 'server_error');
  const es = await openai.chat.completions.create({ model: 'm', stream: true, messages: U('x [[mock:status=503,retry_after=7]]') }).catch((x) => x);
  assert.ok(es instanceof OpenAI.InternalServerError);
  assert.equal(es.status, 503);
  assert.equal(es.headers.get('retry-after'), '7');
  const a = await anthropic.messages.create({ model: 'c', max_tokens: 10, messages: U('x [[mock:status=429]]') }).catch((x) => x);
  assert.ok(a instanceof Anthropic.RateLimitError);
  assert.equal(a.error.type, 'error');
  assert.equal(a.error.error.type, 'rate_limit_error');
  assert.ok(a.headers.get('retry-after'));
  assert.ok(a.requestID);
  const a5 = await anthropic.messages.create({ model: 'c', max_tokens: 10, messages: U('x [[mock:status=500]]') }).catch((x) => x);
  assert.ok(a5 instanceof Anthropic.InternalServerError);
  assert.equal(a5.error.error.type, 'api_error');
  const o = await post('/v1/messages', { model: 'c', max_tokens: 10, stream: true, messages: U('x [[mock:status=529]]') }, antHeaders);
  assert.equal(o.status, 529);
  assert.equal(o.headers.get('content-type'), 'application/json');
  assert.equal(o.json.error.type, 'overloaded_error');
  assert.ok(o.headers.get('request-id'));
  const a529 = await anthropic.messages.create({ model: 'c', max_tokens: 10, messages: U('x [[mock:status=529]]') }).catch((x) => x);
  assert.ok(a529 instanceof Anthropic.InternalServerError);
  assert.equal(a529.status, 529);
});

test('directive cut: stream ends abruptly without [DONE] / message_stop / usage', async () => {
  const chunks = [];
  let err = null;
  try {
    const s = await openai.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: U('x [[mock:cut=3,words=10]]') });
    for await (const ch of s) chunks.push(ch);
  } catch (e) { err = e; }
  assert.ok(err || chunks.length, 'threw or ended');
  assert.ok(!chunks.some((c) => c.usage), 'no usage chunk');
  assert.ok(!chunks.some((c) => c.choices[0]?.finish_reason), 'no finish chunk');
  assert.ok(chunks.length <= 4);
  // raw: exactly role chunk + 3 content chunks arrive, then the connection dies
  const raw = [];
  const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: oaiHeaders, body: JSON.stringify({ model: 'm', stream: true, messages: U('x [[mock:cut=3,words=10]]') }) });
  const dec = new TextDecoder();
  let rawErr = null;
  try { for await (const b of r.body) raw.push(dec.decode(b, { stream: true })); } catch (e) { rawErr = e; }
  assert.ok(rawErr, 'body read fails (incomplete chunked encoding)');
  const frames = raw.join('').split('\n\n').filter(Boolean);
  assert.equal(frames.length, 4);
  assert.ok(!raw.join('').includes('[DONE]'));

  let aErr = null;
  const events = [];
  try {
    const s = await anthropic.messages.create({ model: 'c', max_tokens: 100, stream: true, messages: U('x [[mock:cut=2]]') });
    for await (const ev of s) events.push(ev.type);
  } catch (e) { aErr = e; }
  assert.ok(aErr, 'anthropic stream throws');
  assert.ok(!events.includes('message_stop') && !events.includes('message_delta'));
  assert.equal(events.filter((t) => t === 'content_block_delta').length, 2);
  await assert.rejects(anthropic.messages.stream({ model: 'c', max_tokens: 100, messages: U('x [[mock:cut=1]]') }).finalMessage());
  // non-stream: content-length announced, half the body sent, connection closed
  // (the SDKs surface this as a body-read failure, e.g. TypeError: terminated)
  const ns = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:cut]]') }).catch((x) => x);
  assert.ok(ns instanceof Error && ns.status === undefined, String(ns));
  const nsa = await anthropic.messages.create({ model: 'c', max_tokens: 5, messages: U('x [[mock:cut]]') }).catch((x) => x);
  assert.ok(nsa instanceof Error && nsa.status === undefined, String(nsa));
  const nraw = await post('/v1/chat/completions', { model: 'm', messages: U('x [[mock:cut]]') }, oaiHeaders).catch((x) => x);
  assert.ok(nraw instanceof Error);
});

test('directive delay, first_byte and drip', async () => {
  let t = performance.now();
  await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:delay=150]]') });
  assert.ok(performance.now() - t >= 140);
  t = performance.now();
  await anthropic.messages.create({ model: 'c', max_tokens: 5, messages: U('x [[mock:delay=120]]') });
  assert.ok(performance.now() - t >= 110);
  // first_byte: headers come at once, the first event later (no upper
  // wall-clock bound: right after the headers the body has not started)
  t = performance.now();
  const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: oaiHeaders, body: JSON.stringify({ model: 'm', stream: true, messages: U('x [[mock:first_byte=2000,words=2]]') }) });
  assert.equal(r.status, 200);
  const it = r.body[Symbol.asyncIterator]();
  const first = it.next();
  const early = await Promise.race([first.then(() => 'body'), sleep(20).then(() => 'nothing yet')]);
  assert.equal(early, 'nothing yet', 'the headers came before the first byte');
  await first;
  assert.ok(performance.now() - t >= 1990);
  for (;;) if ((await it.next()).done) break;
  // drip: chunks spaced out
  t = performance.now();
  const arrivals = [];
  const s = await openai.chat.completions.create({ model: 'm', stream: true, messages: U('x [[mock:drip=40,words=4]]') });
  for await (const ch of s) { void ch; arrivals.push(performance.now() - t); }
  assert.equal(arrivals.length, 6);
  assert.ok(arrivals.at(-1) - arrivals[0] >= 4 * 40 - 15, `dripped: ${arrivals.map(Math.round)}`);
});

test('directive no_usage', async () => {
  const c = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:no_usage]]') });
  assert.equal(c.usage, undefined);
  const s = await openai.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: U('x [[mock:no_usage=1]]') });
  const chunks = [];
  for await (const ch of s) chunks.push(ch);
  assert.ok(chunks.every((ch) => ch.usage === undefined && ch.choices.length === 1));
  const m = await anthropic.messages.create({ model: 'c', max_tokens: 10, messages: U('x [[mock:no_usage=1]]') });
  assert.equal(m.usage, undefined);
  const r = await post('/v1/messages', { model: 'c', max_tokens: 10, stream: true, messages: U('x [[mock:no_usage=1]]') }, antHeaders);
  const evs = sseEvents(r.text);
  assert.equal(evs.at(-1).event, 'message_stop');
  assert.equal(JSON.parse(evs[0].data).message.usage, undefined);
  assert.equal(JSON.parse(evs.at(-2).data).usage, undefined);
});

test('directive bad_json: 200 with a truncated body', async () => {
  const e = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:bad_json]]') }).catch((x) => x);
  assert.ok(e instanceof Error);
  const a = await anthropic.messages.create({ model: 'c', max_tokens: 5, messages: U('x [[mock:bad_json=1]]') }).catch((x) => x);
  assert.ok(a instanceof Error);
  const r = await post('/v1/chat/completions', { model: 'm', messages: U('x [[mock:bad_json=1]]') }, oaiHeaders);
  assert.equal(r.status, 200);
  assert.equal(r.json, null);
  assert.ok(r.text.startsWith('{"id":"chatcmpl-'));
  const quiet = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'k', maxRetries: 0, logLevel: 'off' });
  const se = await (async () => {
    const s = await quiet.chat.completions.create({ model: 'm', stream: true, messages: U('x [[mock:bad_json=1]]') });
    for await (const ch of s) void ch;
  })().catch((x) => x);
  assert.ok(se instanceof Error, 'stream with a truncated JSON event fails');
});

test('directives stream_error and drop', async () => {
  const e = await (async () => {
    const s = await openai.chat.completions.create({ model: 'm', stream: true, messages: U('x [[mock:stream_error=2]]') });
    for await (const ch of s) void ch;
  })().catch((x) => x);
  assert.ok(e instanceof OpenAI.APIError);
  const a = await anthropic.messages.stream({ model: 'c', max_tokens: 50, messages: U('x [[mock:stream_error=2]]') }).finalMessage().catch((x) => x);
  assert.ok(a instanceof Anthropic.APIError);
  assert.equal(a.error?.error?.type, 'overloaded_error');
  const d = await openai.chat.completions.create({ model: 'm', messages: U('x [[mock:drop]]') }).catch((x) => x);
  assert.ok(d instanceof OpenAI.APIConnectionError);
});

// ---------------------------------------------------------------------------- validation & auth

test('validation errors in provider shapes', async () => {
  let r = await post('/v1/chat/completions', { messages: U('x') }, oaiHeaders);
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: { message: 'you must provide a model parameter', type: 'invalid_request_error', param: null, code: null } });
  r = await post('/v1/chat/completions', { model: 'm' }, oaiHeaders);
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' } });
  r = await post('/v1/chat/completions', { model: 'm', messages: [] }, oaiHeaders);
  assert.equal(r.json.error.code, 'empty_array');
  r = await post('/v1/chat/completions', { model: 'm', messages: U('x'), stream_options: { include_usage: true } }, oaiHeaders);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'stream_options');
  r = await post('/v1/chat/completions', '{"model": "m", "messa', oaiHeaders);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /could not parse the JSON body/);
  const e = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }).catch((x) => x);
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.param, 'messages[0].role');

  r = await post('/v1/messages', { max_tokens: 5, messages: U('x') }, antHeaders);
  assert.equal(r.status, 400);
  assert.equal(r.json.type, 'error');
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'model: Field required' });
  assert.ok(r.headers.get('request-id'));
  r = await post('/v1/messages', { model: 'c', messages: U('x') }, antHeaders);
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'max_tokens: Field required' });
  r = await post('/v1/messages', { model: 'c', max_tokens: 5 }, antHeaders);
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'messages: Field required' });
  const ae = await anthropic.messages.create({ model: 'c', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }).catch((x) => x);
  assert.ok(ae instanceof Anthropic.BadRequestError);
  // API version 2026-10-21 rejects the sampling parameters; 2023-06-01 still takes them
  r = await post('/v1/messages', { model: 'c', max_tokens: 5, temperature: 1, messages: U('x') }, { ...antHeaders, 'anthropic-version': '2026-10-21' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'temperature: Extra inputs are not permitted' });
  r = await post('/v1/messages', { model: 'c', max_tokens: 5, temperature: 1, top_p: 0.9, messages: U('x') }, antHeaders);
  assert.equal(r.status, 200);
  // unknown endpoint
  r = await post('/v1/nope', {}, oaiHeaders);
  assert.equal(r.status, 404);
  assert.match(r.json.error.message, /Invalid URL/);
});

test('auth errors in provider shapes', async () => {
  let r = await post('/v1/chat/completions', { model: 'm', messages: U('x') }, { 'content-type': 'application/json' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /didn't provide an API key/);
  const e = await new OpenAI({ baseURL: `${base}/v1`, apiKey: 'k', maxRetries: 0 }).chat.completions
    .create({ model: 'm', messages: U('x [[mock:status=401]]') }).catch((x) => x);
  assert.ok(e instanceof OpenAI.AuthenticationError);
  assert.equal(e.code, 'invalid_api_key');
  r = await post('/v1/embeddings', { model: 'm', input: 'x' }, { authorization: 'Basic abc' });
  assert.equal(r.status, 401);
  r = await post('/v1/messages', { model: 'c', max_tokens: 5, messages: U('x') }, { 'anthropic-version': '2023-06-01' });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json.error, { type: 'authentication_error', message: 'x-api-key header is required' });
  r = await post('/v1/messages', { model: 'c', max_tokens: 5, messages: U('x') }, { 'x-api-key': 'k' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'anthropic-version: header is required' });
  const ae = await anthropic.messages.create({ model: 'c', max_tokens: 5, messages: U('x') }, { headers: { authorization: null } }).catch((x) => x);
  assert.ok(ae instanceof Anthropic.AuthenticationError);
});

// ---------------------------------------------------------------------------- CLI & control endpoints

test('CLI prints MOCK_LISTENING and serves /__mock/requests and /__mock/reset', async () => {
  const child = spawn(process.execPath, [PROVIDER, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d) => {
        buf += d;
        const m = /^MOCK_LISTENING (\d+)\n/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (c) => reject(new Error(`exited ${c}`)));
    });
    const u = `http://127.0.0.1:${port}`;
    const c = new OpenAI({ baseURL: `${u}/v1`, apiKey: 'sk-cross', maxRetries: 0 });
    await c.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: U('x') }).then(async (s) => { for await (const ch of s) void ch; });
    const recs = await fetch(`${u}/__mock/requests`).then((r) => r.json());
    assert.equal(recs.length, 1);
    assert.equal(recs[0].headers.authorization, 'Bearer sk-cross');
    assert.equal(recs[0].body.stream_options.include_usage, true);
    const rr = await fetch(`${u}/__mock/reset`, { method: 'POST' });
    assert.equal(rr.status, 200);
    assert.deepEqual(await fetch(`${u}/__mock/requests`).then((r) => r.json()), []);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  }
});

test('--log writes one JSON line per request; --no-record keeps nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mocklog-'));
  const log = path.join(dir, 'mock.log');
  const m2 = await startMock({ port: 0, log, record: false });
  try {
    const c = new OpenAI({ baseURL: `http://127.0.0.1:${m2.port}/v1`, apiKey: 'k', maxRetries: 0 });
    await c.chat.completions.create({ model: 'gpt-4o', messages: U('hi') });
    await c.chat.completions.create({ model: 'gpt-4o', messages: U('hi [[mock:status=503]]') }).catch(() => {});
    assert.equal(m2.requests.length, 0);
  } finally {
    await m2.close();
  }
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.method, l.path, l.status, l.model]),
    [['POST', '/v1/chat/completions', 200, 'gpt-4o'], ['POST', '/v1/chat/completions', 503, 'gpt-4o']]);
  fs.rmSync(dir, { recursive: true });
});

test('x-mock header works on every endpoint (status on models and embeddings)', async () => {
  const e = await openai.models.list({ headers: { 'x-mock': 'status=500' } }).catch((x) => x);
  assert.ok(e instanceof OpenAI.InternalServerError);
  const r = await post('/v1/embeddings', { model: 'e', input: 'x' }, { ...oaiHeaders, 'x-mock': '[[mock:status=429,retry_after=3]]' });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '3');
  const n = await post('/v1/embeddings', { model: 'e', input: 'x [[mock:no_usage]]' }, oaiHeaders);
  assert.equal(n.json.usage, undefined);
});

test('keep-alive: many sequential requests reuse the connection', async () => {
  const body = JSON.stringify({ model: 'm', messages: U('bench') });
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: oaiHeaders, body });
    await r.arrayBuffer();
  }
  // no wall-clock bound (CI is noisy; speed is measured in bench/). Each
  // record carries the connection number: sequential fetches reuse pooled sockets
  assert.equal(mock.requests.length, 300);
  assert.ok(mock.requests.every((r) => Number.isInteger(r.conn)));
  assert.ok(new Set(mock.requests.map((r) => r.conn)).size <= 4);
});
