// semantic_sdk: semantic-cache hits through the official SDKs (npm `openai`
// and `@anthropic-ai/sdk`), unchanged except baseURL and apiKey. A
// paraphrase of a cached question is answered with the cached answer,
// replayed as the API's own SSE stream when the request streams: both SDKs
// must parse it, raw and through their stream helpers; the hit's ledger row
// is cache 'semantic' at zero cost with the miss's cost as baseline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, expectedChatUsage, expectedMessagesUsage, mockAnswer } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, ROOT, cleanup, sleep, ADMIN_KEY } from '../lib/harness.mjs';

const GPT_4O_MINI = { input: 150, output: 600 };
const HAIKU_4_5 = { input: 1000, output: 5000 };
const ASKED = 'How do I reset my password?';
const PARA = 'How can I reset my password?'; // cosine 0.988 with the built-in embedder

let mock, gw, openai, anthropic;
const seen = [];

before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  const dir = mkdtempSync(join(tmpdir(), 'costgate-semantic-sdk-'));
  gw = await startGateway({
    mockPort: mock.port, dir,
    extra: `cache:\n  semantic:\n    enabled: true\n    model_file: "${join(ROOT, 'var/models/use-lite.bin')}"\n    index_dir: "${join(dir, 'semantic')}"\n`,
  });
  const spy = async (url, init) => {
    const res = await fetch(url, init);
    seen.push({ id: res.headers.get('x-costgate-request-id'), cache: res.headers.get('x-costgate-cache') });
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

const last = () => seen.at(-1);
const row = (id) => ledgerRows(gw.ledger, `request_id='${id}'`)[0];
async function waitIndexed(n) {
  for (let i = 0; i < 1000; i++) {
    const st = await (await fetch(`${gw.adminUrl}/admin/cache/stats`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
    if (st.semantic.indexed >= n && st.semantic.pending === 0) return;
    await sleep(20);
  }
  throw new Error('not indexed');
}
function checkHit(id, baseline, stream) {
  const r = row(id);
  assert.equal(r.cache, 'semantic');
  assert.equal(r.cost_total, 0);
  assert.equal(r.baseline_cost, baseline);
  assert.equal(r.stream, stream ? 1 : 0);
  assert.ok(r.cache_similarity >= 0.98);
}

test('OpenAI SDK: a paraphrase served from the semantic cache, as completion, stream and helper', async () => {
  const sys = { role: 'system', content: 'You answer account questions (OpenAI SDK).' };
  const body = { model: 'gpt-4o-mini', messages: [sys, { role: 'user', content: ASKED }] };
  const para = { ...body, messages: [sys, { role: 'user', content: PARA }] };
  const u = expectedChatUsage(body);
  const cost = u.prompt_tokens * GPT_4O_MINI.input + u.completion_tokens * GPT_4O_MINI.output;
  const miss = await openai.chat.completions.create(body);
  assert.equal(last().cache, 'miss');
  assert.equal(miss.choices[0].message.content, mockAnswer(ASKED));
  await waitIndexed(1);

  const hit = await openai.chat.completions.create(para);
  assert.equal(last().cache, 'semantic');
  assert.deepEqual(hit, miss);
  checkHit(last().id, cost, false);

  const stream = await openai.chat.completions.create({ ...para, stream: true, stream_options: { include_usage: true } });
  let content = '', finish = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.id, miss.id);
    content += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(last().cache, 'semantic');
  assert.equal(content, miss.choices[0].message.content);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, u);
  checkHit(last().id, cost, true);

  const runner = openai.chat.completions.stream(para);
  let deltas = '';
  runner.on('content', (d) => { deltas += d; });
  const final = await runner.finalChatCompletion();
  assert.equal(last().cache, 'semantic');
  assert.equal(deltas, miss.choices[0].message.content);
  assert.equal(final.choices[0].finish_reason, 'stop');
});

test('Anthropic SDK: a paraphrase served from the semantic cache, as message, stream and helper', async () => {
  const base = { model: 'claude-haiku-4-5', max_tokens: 128, system: 'You answer account questions (Anthropic SDK).' };
  const body = { ...base, messages: [{ role: 'user', content: ASKED }] };
  const para = { ...base, messages: [{ role: 'user', content: PARA }] };
  const u = expectedMessagesUsage(body);
  const cost = u.input_tokens * HAIKU_4_5.input + u.output_tokens * HAIKU_4_5.output;
  const miss = await anthropic.messages.create(body);
  assert.equal(last().cache, 'miss');
  await waitIndexed(2);

  const hit = await anthropic.messages.create(para);
  assert.equal(last().cache, 'semantic');
  assert.deepEqual(hit, miss);
  checkHit(last().id, cost, false);

  const stream = await anthropic.messages.create({ ...para, stream: true });
  let text = '', stop = null;
  const types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
  }
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(text, miss.content[0].text);
  assert.equal(stop, 'end_turn');
  checkHit(last().id, cost, true);

  const s = anthropic.messages.stream(para);
  let texts = '';
  s.on('text', (d) => { texts += d; });
  const final = await s.finalMessage();
  assert.equal(last().cache, 'semantic');
  assert.equal(texts, miss.content[0].text);
  assert.deepEqual(final.content, miss.content);
  assert.equal(final.usage.output_tokens, u.output_tokens);
});
