// semantic_http: the semantic cache with an OpenAI-compatible /v1/embeddings
// endpoint as its embedder (the mock provider's: deterministic bag-of-words
// vectors with OpenAI's usage object), through the real binary.
//
//  - the call: POST {model, input, encoding_format, dimensions} with the
//    configured key, made on the worker loop through the upstream client
//  - its tokens are priced on the embedding axis of the request's own
//    ledger row, on a miss (added to the chat cost, not to the baseline)
//    and on a hit (the hit's whole cost), and in x-costgate-cost-usd
//  - an endpoint that fails leaves an ordinary miss (noted), never an error
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, expectedChatUsage, embeddingTokens } from '../mock/provider.mjs';
import { startGateway, ledgerRows, cleanup, sleep } from '../lib/harness.mjs';
import { PRICE, OAI, ANT, call, stats } from './cache_util.mjs';

const EMB_PRICE = 20; // text-embedding-3-small: $0.02 / 1M tokens = 20 nano-USD per token

let mock, gw, dir;
const config = (d, url) => `
cache:
  semantic:
    enabled: true
    embedder: {url: "${url}", model: text-embedding-3-small, api_key_env: CG_TEST_OPENAI_KEY, dimensions: 64, timeout_ms: 3000}
    index_dir: "${join(d, 'semantic')}"
`;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'costgate-semantic-http-'));
  gw = await startGateway({ mockPort: mock.port, dir, extra: config(dir, `http://127.0.0.1:${mock.port}/v1/embeddings`) });
});
after(async () => {
  if (gw && !gw.exited()) await gw.stop();
  await mock.close();
  cleanup(dir);
});

const row = (g, id) => {
  const rows = ledgerRows(g.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1);
  return rows[0];
};
async function indexed(g, want) {
  for (let i = 0; i < 1000; i++) {
    const s = (await stats(g)).semantic;
    if (s.indexed >= want && s.pending === 0) return s;
    await sleep(20);
  }
  throw new Error('not indexed');
}
const embCalls = () => mock.requests.filter((r) => r.path === '/v1/embeddings');

test('an HTTP embedder: the call, a hit, and its tokens on the embedding axis of each row', async () => {
  const asked = 'How do I reset my password?';
  const para = 'how do I reset my password'; // the same words: the mock's vectors are equal
  const body = (t) => ({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'HTTP embedder test.' }, { role: 'user', content: t }] });
  const e0 = embCalls().length;
  const miss = await call(gw, OAI, body(asked));
  assert.equal(miss.cache, 'miss');
  await indexed(gw, 1);
  const calls = embCalls().slice(e0);
  assert.equal(calls.length, 1, 'one embedding call for the miss (its vector is reused for the index)');
  assert.deepEqual(calls[0].body, { model: 'text-embedding-3-small', input: asked, encoding_format: 'float', dimensions: 64 });
  assert.equal(calls[0].headers.authorization, 'Bearer sk-upstream-openai-secret');

  const u = expectedChatUsage(body(asked));
  const chatCost = u.prompt_tokens * PRICE['gpt-4o-mini'].input + u.completion_tokens * PRICE['gpt-4o-mini'].output;
  const m = row(gw, miss.id);
  const et = embeddingTokens(asked);
  assert.ok(et > 0);
  assert.equal(m.tok_embedding, et);
  assert.equal(m.cost_embedding, et * EMB_PRICE);
  assert.equal(m.cost_total, chatCost + et * EMB_PRICE);
  assert.equal(m.baseline_cost, chatCost, 'the baseline has no embedding: the lookup is an added cost');
  assert.equal(miss.headers.get('x-costgate-cost-usd'), ((chatCost + et * EMB_PRICE) / 1e9).toFixed(9));

  const hit = await call(gw, OAI, body(para));
  assert.equal(hit.cache, 'semantic');
  assert.deepEqual(hit.json, miss.json);
  const h = row(gw, hit.id);
  const pt = embeddingTokens(para);
  assert.equal(h.cache, 'semantic');
  assert.equal(h.tok_embedding, pt);
  assert.equal(h.cost_embedding, pt * EMB_PRICE);
  assert.equal(h.cost_input + h.cost_output, 0);
  assert.equal(h.cost_total, pt * EMB_PRICE, 'a hit costs its embedding');
  assert.equal(h.baseline_cost, chatCost);
  assert.ok(h.cache_similarity > 0.999);
  assert.equal(h.cache_match, m.cache_key);
  assert.equal(hit.headers.get('x-costgate-cost-usd'), ((pt * EMB_PRICE) / 1e9).toFixed(9));

  // a request the semantic cache does not consider makes no embedding call
  const e1 = embCalls().length;
  await call(gw, OAI, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: asked }] });
  assert.equal(embCalls().length, e1);
  // Anthropic requests use the same embedder
  const am = await call(gw, ANT, { model: 'claude-haiku-4-5', max_tokens: 32, messages: [{ role: 'user', content: 'Where is my parcel?' }] });
  assert.equal(row(gw, am.id).tok_embedding, embeddingTokens('Where is my parcel?'));
  assert.equal(embCalls().length, e1 + 1);
  const st = (await stats(gw)).semantic;
  assert.equal(st.embedder, 'http');
});

test('an embedder that cannot be reached: an ordinary miss, noted, nothing billed', async () => {
  const d = mkdtempSync(join(tmpdir(), 'costgate-semantic-http-down-'));
  const g = await startGateway({ mockPort: mock.port, dir: d, extra: config(d, 'http://127.0.0.1:9/v1/embeddings') });
  try {
    const r = await call(g, OAI, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Is the embedder down?' }] });
    assert.equal(r.status, 200);
    assert.equal(r.cache, 'miss');
    const rw = row(g, r.id);
    assert.match(rw.note, /semantic:embedder_error/);
    assert.equal(rw.tok_embedding, 0);
    assert.equal(rw.cost_embedding, 0);
    assert.equal(rw.cache_similarity, null);
    await sleep(100);
    assert.equal((await stats(g)).semantic.indexed, 0, 'no vector: not indexed');
  } finally {
    await g.stop();
    cleanup(d);
  }
});
