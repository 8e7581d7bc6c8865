// semantic: the semantic cache on the request path, through the real binary,
// the built-in embedder and the mock provider (docs/semantic-cache.md, "On
// the request path").
//
//  - a paraphrase ("How do I reset my password?" / "How can I reset my
//    password?", cosine 0.988 with our embedder) is served the cached answer
//    without an upstream call: x-costgate-cache: semantic, the similarity
//    header, a ledger row with cache 'semantic', zero token cost, the miss's
//    cost as baseline, the matched entry and similarity; an audit row with
//    both queries; `costgate cache audit --semantic` shows them
//  - the second gate: a number change (0.998) and a negation (0.983) miss
//  - partitions: another tenant, segment, permissions context, model,
//    system prompt, sampling or prompt version misses; the same permissions
//    in another order hit; 200 pairs of identical texts across partitions:
//    0 semantic hits
//  - multi-turn conversations are not looked up (strict), tools neither;
//    same_context looks up a last turn after the same earlier turns
//  - a full pool queue is a miss (noted), never a wait
//  - x-costgate-semantic-threshold raises the floor, never lowers it
//  - a thumbs down on a semantic hit removes the entry and its vector;
//    tag invalidation and TTL expiry remove the vector too
//  - the index survives a graceful restart; a v3 ledger is upgraded to v4
//  - Anthropic and streamed hits (replayed SSE)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, expectedChatUsage } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY_PLAIN, BIN, ROOT, cleanup, sleep } from '../lib/harness.mjs';
import { PRICE, OAI, ANT, keyYaml, sseEvents, call, invalidate, stats, feedback, setClock, openaiStreamText, anthropicStreamText } from './cache_util.mjs';

const run = promisify(execFile);
const MODEL_FILE = join(ROOT, 'var/models/use-lite.bin');
const KEY_T3 = 'cg-test-key-sem-t3'; // tenant t3, segment seg1 (no attribution)
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);

const ASKED = 'How do I reset my password?';
const PARA = 'How can I reset my password?';

const sql = (db, q) => {
  const out = execFileSync('sqlite3', ['-json', db, q], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
};

const semConfig = (dir, extra = '') => `
cache:
  ttl: {default: 3600, by_intent: {short_lived: 60}}
  semantic:
    enabled: true
    model_file: "${MODEL_FILE}"
    index_dir: "${join(dir, 'semantic')}"
${extra}`;

let mock, gw, dir;
const gws = [];
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'costgate-semantic-'));
  gw = await startGateway({
    mockPort: mock.port, dir, extra: semConfig(dir), env: { COSTGATE_TEST_CLOCK: '1' },
    extraKeys: keyYaml('t3', KEY_T3, 't3', '    segment: seg1\n'),
  });
  await setClock(gw, T0);
});
after(async () => {
  for (const g of gws) if (!g.exited()) await g.kill('SIGKILL');
  if (gw && !gw.exited()) await gw.stop();
  await mock.close();
  cleanup(dir);
});

let n = 0;
const sys = (tag) => `You are the assistant of test ${tag} (${++n}).`;
const chat = (system, content, extra = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'system', content: system }, { role: 'user', content }],
  ...extra,
});
const row = (g, id) => {
  const rows = ledgerRows(g.ledger, `request_id='${id}'`);
  assert.equal(rows.length, 1, `one ledger row for ${id}`);
  return rows[0];
};
async function upstream(fn) {
  const n0 = mock.requests.filter((r) => r.path !== '/v1/embeddings').length;
  const out = await fn();
  return { calls: mock.requests.filter((r) => r.path !== '/v1/embeddings').length - n0, out };
}
async function semStats(g) {
  return (await stats(g)).semantic;
}
// The store indexes a miss's query on the worker pool after the answer is
// sent: wait until `indexed` reaches n and nothing is queued.
async function indexed(g, want, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const s = await semStats(g);
    if (s.indexed >= want && s.pending === 0) return s;
    if (Date.now() - t0 > ms) throw new Error(`index did not reach ${want}: ${JSON.stringify(s)}`);
    await sleep(20);
  }
}
// Sends a miss and waits until its query is in the index.
async function seed(g, api, body, opts) {
  const before = (await semStats(g)).indexed;
  const r = await call(g, api, body, opts);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.cache, 'miss');
  await indexed(g, before + 1);
  return r;
}

test('a paraphrase is served the cached answer: headers, ledger row, audit row', async () => {
  const s = sys('paraphrase');
  const miss = await seed(gw, OAI, chat(s, ASKED));
  const { calls, out: hit } = await upstream(() => call(gw, OAI, chat(s, PARA)));
  assert.equal(calls, 0, 'no upstream call for a semantic hit');
  assert.equal(hit.status, 200);
  assert.equal(hit.cache, 'semantic');
  assert.ok(Number(hit.headers.get('x-costgate-cache-similarity')) >= 0.98);
  assert.equal(hit.headers.get('x-costgate-cost-usd'), '0.000000000');
  assert.equal(hit.json.choices[0].message.content, miss.json.choices[0].message.content);
  assert.deepEqual(hit.json, miss.json, 'the stored answer, byte for byte');

  const m = row(gw, miss.id), h = row(gw, hit.id);
  const u = expectedChatUsage(chat(s, ASKED));
  const cost = u.prompt_tokens * PRICE['gpt-4o-mini'].input + u.completion_tokens * PRICE['gpt-4o-mini'].output;
  assert.equal(m.cost_total, cost);
  assert.equal(h.cache, 'semantic');
  assert.equal(h.cost_total, 0);
  assert.equal(h.cost_input + h.cost_output + h.cost_embedding, 0, 'the built-in embedder costs 0');
  assert.equal(h.baseline_cost, cost, 'baseline: the stored usage at today\'s price');
  assert.equal(h.cache_match, m.cache_key, 'the entry served: the miss\'s');
  assert.notEqual(h.cache_key, m.cache_key, 'the key it looked up is its own');
  assert.equal(h.cache_src, miss.id);
  assert.ok(h.cache_similarity >= 0.98 && h.cache_similarity < 1, String(h.cache_similarity));
  assert.equal(h.status, 'ok');
  const a = sql(gw.ledger, `SELECT * FROM semantic_hits WHERE request_id='${hit.id}'`);
  assert.equal(a.length, 1);
  assert.equal(a[0].asked, PARA);
  assert.equal(a[0].cached, ASKED);
  assert.equal(a[0].tenant, 't1');
  assert.equal(a[0].match_key, m.cache_key);
  assert.equal(a[0].match_src, miss.id);
  assert.ok(Math.abs(a[0].similarity - h.cache_similarity) < 1e-6);
  // the exact repeat is still an exact hit
  assert.equal((await call(gw, OAI, chat(s, ASKED))).cache, 'exact');
  assert.ok((await semStats(gw)).hits >= 1);

  // the audit command shows both queries side by side
  const { stdout } = await run(BIN, ['cache', 'audit', '--semantic', '--db', gw.ledger, '--limit', '50']);
  assert.match(stdout, /How can I reset my password\?/);
  assert.match(stdout, /How do I reset my password\?/);
  const { stdout: js } = await run(BIN, ['cache', 'audit', '--semantic', '--db', gw.ledger, '--json']);
  const aj = JSON.parse(js);
  const mine = aj.hits.find((x) => x.request_id === hit.id);
  assert.equal(mine.asked, PARA);
  assert.equal(mine.cached, ASKED);
  assert.equal(mine.tenant, 't1');
  assert.ok(mine.similarity >= 0.98);
  assert.ok(aj.summary.hits >= 1);
});

test('the second gate: a changed number or a negation is a miss', async () => {
  const s = sys('gate');
  await seed(gw, OAI, chat(s, 'How do I set up 2 VPNs?'));
  const { calls, out: r } = await upstream(() => call(gw, OAI, chat(s, 'How do I set up 3 VPNs?')));
  assert.equal(calls, 1);
  assert.equal(r.cache, 'miss');
  const rw = row(gw, r.id);
  assert.ok(rw.cache_similarity >= 0.98, 'similar enough: only the gate refused it');
  assert.match(rw.note, /semantic:gate=numbers/);

  await seed(gw, OAI, chat(s, 'Is it safe to drink coffee while pregnant?'));
  const neg = await call(gw, OAI, chat(s, 'Is it not safe to drink coffee while pregnant?'));
  assert.equal(neg.cache, 'miss');
  assert.match(row(gw, neg.id).note, /semantic:gate=negation/);
});

test('partitions: tenant, segment, permissions, model, system prompt, sampling, prompt version', async () => {
  const s = sys('partitions');
  const perm = { 'x-costgate-permissions': 'billing, admin' };
  await seed(gw, OAI, chat(s, ASKED), { headers: perm });
  const para = chat(s, PARA);
  // the same permissions, listed in another order: the same partition
  const hit = await call(gw, OAI, para, { headers: { 'x-costgate-permissions': 'admin,billing' } });
  assert.equal(hit.cache, 'semantic');
  const misses = {
    'another tenant': () => call(gw, OAI, para, { key: KEY_PLAIN, headers: perm }),
    'another tenant, same segment': () => call(gw, OAI, para, { key: KEY_T3, headers: perm }),
    'another segment': () => call(gw, OAI, para, { headers: { ...perm, 'x-costgate-segment': 'seg2' } }),
    'no permissions': () => call(gw, OAI, para),
    'other permissions': () => call(gw, OAI, para, { headers: { 'x-costgate-permissions': 'billing' } }),
    'another model': () => call(gw, OAI, { ...para, model: 'gpt-4o' }, { headers: perm }),
    'another system prompt': () => call(gw, OAI, chat(s + ' ', PARA), { headers: perm }),
    'another temperature': () => call(gw, OAI, { ...para, temperature: 0.3 }, { headers: perm }),
    'a prompt version': () => call(gw, OAI, para, { headers: { ...perm, 'x-costgate-prompt-version': 'v2' } }),
    'context ids': () => call(gw, OAI, para, { headers: { ...perm, 'x-costgate-context-ids': 'doc-1' } }),
  };
  for (const [what, fn] of Object.entries(misses)) {
    const r = await fn();
    assert.equal(r.status, 200, `${what}: ${r.text}`);
    assert.notEqual(r.cache, 'semantic', what);
  }
  // a malformed permissions header is refused, naming it
  const bad = await call(gw, OAI, para, { headers: { 'x-costgate-permissions': 'a,' + 'x'.repeat(300) } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /x-costgate-permissions/);
});

test('200 pairs of identical queries in partitions that differ in one attribute: 0 semantic hits', async () => {
  // Each probe is stored in its own partition (A), then asked, with one
  // trailing space (an exact-cache miss, cosine 0.996: a sure semantic hit
  // within A), in a partition B that differs from A in one attribute: B
  // must miss. Control: the same in A itself is a semantic hit.
  const variants = [
    (b) => ({ body: b, opts: { key: KEY_PLAIN } }),
    (b) => ({ body: b, opts: { headers: { 'x-costgate-segment': 'other-seg' } } }),
    (b) => ({ body: b, opts: { headers: { 'x-costgate-permissions': 'role-x' } } }),
    (b) => ({ body: { ...b, model: 'gpt-4o' }, opts: {} }),
    (b) => ({ body: { ...b, messages: [{ role: 'system', content: 'Another prompt.' }, b.messages[1]] }, opts: {} }),
    (b) => ({ body: { ...b, temperature: 0.7 }, opts: {} }),
    (b) => ({ body: { ...b, max_tokens: 99 }, opts: {} }),
    (b) => ({ body: b, opts: { headers: { 'x-costgate-prompt-version': 'pv-9' } } }),
    (b) => ({ body: b, opts: { key: KEY_T3 } }),
    (b) => ({ body: b, opts: { headers: { 'x-costgate-context-ids': 'kb-7' } } }),
  ];
  const s = 'You are the partition test.';
  const N = 200;
  const text = (i) => `Partition probe ${i}: how do I rotate the credentials of service ${i}?`;
  const before = (await semStats(gw)).indexed;
  for (let i = 0; i < N; i++) assert.equal((await call(gw, OAI, chat(s, text(i)))).cache, 'miss');
  await indexed(gw, before + N);
  let cross = 0;
  for (let i = 0; i < N; i++) {
    const v = variants[i % variants.length](chat(s, text(i) + ' '));
    const r = await call(gw, OAI, v.body, v.opts);
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.cache, 'exact');
    if (r.cache === 'semantic') cross++;
  }
  assert.equal(cross, 0, 'no cross-partition semantic hit');
  let own = 0;
  for (let i = 0; i < N; i++) if ((await call(gw, OAI, chat(s, text(i) + '  '))).cache === 'semantic') own++;
  assert.equal(own, N, 'within its own partition every probe is a semantic hit');
});

test('multi-turn conversations and tool use are not looked up (strict single-turn)', async () => {
  const s = sys('multiturn');
  await seed(gw, OAI, chat(s, ASKED));
  const l0 = (await semStats(gw)).lookups, i0 = (await semStats(gw)).indexed;
  const multi = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: s },
      { role: 'user', content: 'I forgot my login.' },
      { role: 'assistant', content: 'I can help.' },
      { role: 'user', content: PARA },
    ],
  };
  const r = await call(gw, OAI, multi);
  assert.equal(r.cache, 'miss');
  assert.equal(row(gw, r.id).cache_similarity, null, 'not looked up');
  const tools = await call(gw, OAI, chat(s, PARA, {
    tools: [{ type: 'function', function: { name: 'lookup_account', parameters: { type: 'object', properties: {} } } }],
  }));
  assert.equal(tools.cache, 'miss');
  const img = await call(gw, OAI, chat(s, [{ type: 'text', text: PARA }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]));
  assert.equal(img.cache, 'miss');
  await sleep(200);
  const st = await semStats(gw);
  assert.equal(st.lookups, l0, 'none of them was looked up');
  assert.equal(st.indexed, i0, 'nor indexed');
});

test('x-costgate-semantic-threshold raises the floor and cannot lower it', async () => {
  const s1 = sys('threshold-raise');
  await seed(gw, OAI, chat(s1, ASKED));
  const raised = await call(gw, OAI, chat(s1, PARA), { headers: { 'x-costgate-semantic-threshold': '0.999' } });
  assert.equal(raised.cache, 'miss', 'the paraphrase (0.988) is below the raised floor');
  assert.ok(row(gw, raised.id).cache_similarity >= 0.98);
  // equal to the floor: still a hit
  const s2 = sys('threshold-equal');
  await seed(gw, OAI, chat(s2, ASKED));
  const same = await call(gw, OAI, chat(s2, PARA), { headers: { 'x-costgate-semantic-threshold': '0.98' } });
  assert.equal(same.cache, 'semantic');
  // lower: ignored, and said so in the ledger (not as a budget action)
  const s3 = sys('threshold-lower');
  await seed(gw, OAI, chat(s3, 'How do I set up a VPN?'));
  const lowered = await call(gw, OAI, chat(s3, 'How do I configure a VPN?'), {
    headers: { 'x-costgate-semantic-threshold': '0.5' },
  });
  assert.equal(lowered.cache, 'miss', 'cosine 0.92: below the floor, which 0.5 cannot lower');
  const lr = row(gw, lowered.id);
  assert.ok(lr.cache_similarity > 0.5 && lr.cache_similarity < 0.98, String(lr.cache_similarity));
  assert.match(lr.note, /semantic:threshold_below_floor_ignored/);
  assert.equal(lowered.headers.get('x-costgate-budget-action'), null);
  const s4 = sys('threshold-lower-hit');
  await seed(gw, OAI, chat(s4, ASKED));
  const low2 = await call(gw, OAI, chat(s4, PARA), { headers: { 'x-costgate-semantic-threshold': '0.1' } });
  assert.equal(low2.cache, 'semantic', 'a lower value changes nothing');
  const bad = await call(gw, OAI, chat(s4, PARA), { headers: { 'x-costgate-semantic-threshold': 'high' } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /x-costgate-semantic-threshold/);
});

test('a thumbs down on a semantic hit removes the entry and its vector', async () => {
  const s = sys('feedback');
  const miss = await seed(gw, OAI, chat(s, ASKED));
  const e0 = (await semStats(gw)).entries;
  const hit = await call(gw, OAI, chat(s, PARA));
  assert.equal(hit.cache, 'semantic');
  const fb = await feedback(gw, { request_id: hit.id, rating: 'down' });
  assert.equal(fb.status, 200);
  assert.equal(fb.json.cache_removed, 1);
  assert.equal((await semStats(gw)).entries, e0 - 1, 'the vector went with the entry');
  const again = await call(gw, OAI, chat(s, PARA));
  assert.equal(again.cache, 'miss');
  assert.equal(row(gw, again.id).cache_similarity, null, 'nothing left in the partition');
  const inv = sql(gw.ledger, `SELECT * FROM cache_invalidations WHERE cause='feedback' AND detail='${hit.id}' AND removed=1`);
  assert.equal(inv.length, 1);
  assert.ok(miss.id);
});

test('tag invalidation and TTL expiry take the vector with the entry', async () => {
  const s = sys('invalidate');
  await seed(gw, OAI, chat(s, ASKED), { headers: { 'x-costgate-cache-tags': 'doc-17' } });
  assert.equal((await call(gw, OAI, chat(s, PARA))).cache, 'semantic');
  const e0 = (await semStats(gw)).entries;
  const inv = await invalidate(gw, { tags: ['doc-17'] });
  assert.equal(inv.json.removed, 1);
  assert.equal((await semStats(gw)).entries, e0 - 1);
  assert.equal((await call(gw, OAI, chat(s, PARA))).cache, 'miss');

  // TTL: an entry of an intent with a 60 s TTL stops serving after it
  const s2 = sys('ttl');
  const h = { 'x-costgate-intent': 'short_lived' };
  await seed(gw, OAI, chat(s2, ASKED), { headers: h });
  assert.equal((await call(gw, OAI, chat(s2, PARA), { headers: h })).cache, 'semantic');
  await setClock(gw, T0 + 61_000);
  const late = await call(gw, OAI, chat(s2, PARA), { headers: h });
  assert.equal(late.cache, 'miss');
  assert.match(row(gw, late.id).note, /semantic:entry_gone/);
  // an entry stored under a longer TTL is not served to a request whose own TTL is shorter
  const s3 = sys('ttl-own');
  await seed(gw, OAI, chat(s3, ASKED));
  await setClock(gw, T0 + 61_000 + 120_000);
  const own = await call(gw, OAI, chat(s3, PARA), { headers: h });
  assert.equal(own.cache, 'miss');
  assert.match(row(gw, own.id).note, /semantic:entry_too_old/);
  const para2 = 'how can I reset my password?'; // 0.984; PARA itself is now an exact entry
  assert.equal((await call(gw, OAI, chat(s3, para2))).cache, 'semantic', 'its own TTL (3600 s) allows it');
  await setClock(gw, T0);
});

test('Anthropic, and streamed hits replayed as each API\'s SSE', async () => {
  const s = sys('stream');
  const a = await seed(gw, ANT, { model: 'claude-haiku-4-5', max_tokens: 64, system: s, messages: [{ role: 'user', content: ASKED }] });
  const hit = await call(gw, ANT, { model: 'claude-haiku-4-5', max_tokens: 64, system: s, messages: [{ role: 'user', content: PARA }] });
  assert.equal(hit.cache, 'semantic');
  assert.deepEqual(hit.json, a.json);
  const st = await call(gw, ANT, { model: 'claude-haiku-4-5', max_tokens: 64, system: s, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: PARA }] }] });
  assert.equal(st.cache, 'semantic');
  const at = anthropicStreamText(sseEvents(st.text));
  assert.equal(at.text, a.json.content[0].text);
  assert.equal(at.stop, 'end_turn');

  const o = await seed(gw, OAI, chat(s, ASKED));
  const os = await call(gw, OAI, chat(s, PARA, { stream: true, stream_options: { include_usage: true } }));
  assert.equal(os.cache, 'semantic');
  assert.match(os.headers.get('content-type'), /text\/event-stream/);
  const ot = openaiStreamText(sseEvents(os.text));
  assert.equal(ot.text, o.json.choices[0].message.content);
  assert.equal(ot.finish, 'stop');
  assert.ok(ot.usage);
  assert.equal(row(gw, os.id).stream, 1);
});

// The ledger of schema v3 (before cache_similarity / cache_match / semantic_hits).
const V3_COLUMNS = `
CREATE TABLE ledger ( request_id TEXT NOT NULL, attempt INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
 day TEXT NOT NULL, kind TEXT NOT NULL, api TEXT NOT NULL, tenant TEXT NOT NULL DEFAULT '',
 user TEXT NOT NULL DEFAULT '', segment TEXT NOT NULL DEFAULT '', feature TEXT NOT NULL DEFAULT '',
 intent TEXT NOT NULL DEFAULT '', key_name TEXT NOT NULL DEFAULT '', provider TEXT NOT NULL DEFAULT '',
 model_requested TEXT NOT NULL DEFAULT '', model_served TEXT NOT NULL DEFAULT '', tier TEXT NOT NULL DEFAULT '',
 stream INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, http_status INTEGER NOT NULL DEFAULT 0,
 upstream_status INTEGER NOT NULL DEFAULT 0, tok_input_predicted INTEGER NOT NULL DEFAULT 0,
 tok_input INTEGER NOT NULL DEFAULT 0, tok_cached_read INTEGER NOT NULL DEFAULT 0,
 tok_cache_write_5m INTEGER NOT NULL DEFAULT 0, tok_cache_write_1h INTEGER NOT NULL DEFAULT 0,
 tok_output INTEGER NOT NULL DEFAULT 0, tok_reasoning INTEGER NOT NULL DEFAULT 0,
 tok_embedding INTEGER NOT NULL DEFAULT 0, web_searches INTEGER NOT NULL DEFAULT 0,
 cost_input INTEGER NOT NULL DEFAULT 0, cost_output INTEGER NOT NULL DEFAULT 0,
 cost_embedding INTEGER NOT NULL DEFAULT 0, cost_external_api INTEGER NOT NULL DEFAULT 0,
 cost_storage_compute INTEGER NOT NULL DEFAULT 0, cost_total INTEGER NOT NULL DEFAULT 0,
 baseline_cost INTEGER NOT NULL DEFAULT 0, estimated INTEGER NOT NULL DEFAULT 0,
 unpriced INTEGER NOT NULL DEFAULT 0, cache TEXT NOT NULL DEFAULT 'miss',
 cache_key TEXT NOT NULL DEFAULT '', cache_src TEXT NOT NULL DEFAULT '',
 latency_us INTEGER NOT NULL DEFAULT 0, ttfb_us INTEGER NOT NULL DEFAULT 0,
 error TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '', PRIMARY KEY (request_id, attempt)) WITHOUT ROWID;
INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, status, cache, cache_key, cost_total, baseline_cost)
 VALUES ('req_v3', 1, 1700000000000, '2023-11-14', 'chat', 'openai', 'ok', 'exact', 'abc', 0, 99);`;

test('the index survives a graceful restart; a v3 ledger is upgraded in place', async () => {
  const d = mkdtempSync(join(tmpdir(), 'costgate-semantic-restart-'));
  const ledger = join(d, 'ledger.db');
  execFileSync('sqlite3', [ledger, V3_COLUMNS]);
  const opts = { mockPort: mock.port, dir: d, ledger, extra: semConfig(d) };
  let g = await startGateway(opts);
  gws.push(g);
  const s = sys('restart');
  const miss = await seed(g, OAI, chat(s, ASKED));
  await seed(g, OAI, chat(s, 'What is the capital of France?'));
  await g.stop();
  assert.ok(existsSync(join(d, 'semantic', 'CURRENT')), 'a snapshot was written at the stop');
  const snap = readFileSync(join(d, 'semantic', 'CURRENT'), 'utf8').trim();
  assert.ok(existsSync(join(d, 'semantic', snap, 'entries.cgse')));

  g = await startGateway(opts);
  gws.push(g);
  const st = await semStats(g);
  assert.equal(st.entries, 2, 'both cached queries were loaded');
  const { calls, out: hit } = await upstream(() => call(g, OAI, chat(s, PARA)));
  assert.equal(calls, 0);
  assert.equal(hit.cache, 'semantic');
  assert.equal(row(g, hit.id).cache_src, miss.id);
  assert.equal((await call(g, OAI, chat(s, "What's the capital of France?"))).cache, 'semantic');
  await g.stop();
  // v3 rows kept, v4 columns and table added
  const old = ledgerRows(ledger, "request_id='req_v3'");
  assert.equal(old.length, 1);
  assert.equal(old[0].baseline_cost, 99);
  assert.equal(old[0].cache_similarity, null);
  assert.equal(old[0].cache_match, '');
  assert.equal(sql(ledger, "SELECT v FROM meta WHERE k='schema_version'")[0].v, '5');
  assert.equal(sql(ledger, `SELECT count(*) AS n FROM semantic_hits WHERE request_id='${hit.id}'`)[0].n, 1);

  // a snapshot whose entries are gone from the exact cache is not served:
  // wipe the exact entries and restart
  execFileSync('sqlite3', [ledger, 'DELETE FROM cache_entries']);
  g = await startGateway(opts);
  gws.push(g);
  assert.equal((await semStats(g)).entries, 0, 'vectors without their entries were dropped at load');
  assert.equal((await call(g, OAI, chat(s, PARA))).cache, 'miss');
  await g.stop();
  cleanup(d);
});

test('the exact-cache bypass also bypasses the semantic cache (no-store, TTL 0, temperature)', async () => {
  const s = sys('bypass');
  await seed(gw, OAI, chat(s, ASKED));
  assert.equal((await call(gw, OAI, chat(s, PARA), { headers: { 'cache-control': 'no-store' } })).cache, 'miss');
  assert.equal((await call(gw, OAI, chat(s, PARA, { temperature: 1.5 }))).cache, 'miss');
  // no-cache: not served from any cache, but the fresh answer is stored (and indexed)
  const i0 = (await semStats(gw)).indexed;
  const nc = await call(gw, OAI, chat(s, PARA), { headers: { 'cache-control': 'no-cache' } });
  assert.equal(nc.cache, 'miss');
  await indexed(gw, i0 + 1);
  assert.equal((await call(gw, OAI, chat(s, PARA))).cache, 'exact');
});

test('same_context: the last user turn after the same earlier turns; a full queue is a miss', async () => {
  const d = mkdtempSync(join(tmpdir(), 'costgate-semantic-ctx-'));
  const g = await startGateway({
    mockPort: mock.port, dir: d,
    extra: semConfig(d, '    single_turn: same_context\n    pool_threads: 1\n    queue_max: 1\n'),
  });
  gws.push(g);
  try {
    const s = sys('same-context');
    const conv = (prior, last) => ({
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: s }, { role: 'user', content: prior }, { role: 'assistant', content: 'Noted.' }, { role: 'user', content: last }],
    });
    await seed(g, OAI, conv('I use Windows 11 at work.', ASKED));
    assert.equal((await call(g, OAI, conv('I use Windows 11 at work.', PARA))).cache, 'semantic');
    assert.equal((await call(g, OAI, conv('I use macOS at home.', PARA))).cache, 'miss', 'another prior context');
    assert.equal((await call(g, OAI, chat(s, PARA))).cache, 'miss', 'no prior context');
    // one pool thread, one queued job: concurrent lookups beyond it are
    // skipped (a miss, noted), never waited for or failed
    const before = await semStats(g);
    const N = 24;
    const rs = await Promise.all(Array.from({ length: N }, (_, i) =>
      call(g, OAI, chat(s, `Concurrent question ${i}: how do I export report ${i} as a PDF file?`))));
    for (const r of rs) assert.equal(r.status, 200);
    const after = await semStats(g);
    const skipped = after.skipped_queue_full - before.skipped_queue_full;
    assert.equal(after.lookups - before.lookups + skipped, N, 'each request was looked up or skipped');
    const noted = rs.filter((r) => /semantic:skipped_queue_full/.test(row(g, r.id).note)).length;
    assert.equal(noted, skipped);
    await g.stop();
  } finally {
    cleanup(d);
  }
});

test('config errors name the file, line and field; a missing model file is refused at start', async () => {
  const d = mkdtempSync(join(tmpdir(), 'costgate-semantic-cfg-'));
  await assert.rejects(startGateway({
    mockPort: mock.port, dir: d,
    extra: 'cache:\n  semantic:\n    enabled: true\n    model_file: /nonexistent/use-lite.bin\n',
  }), /cache\.semantic\.model_file/);
  await assert.rejects(startGateway({
    mockPort: mock.port, dir: d,
    extra: 'cache:\n  semantic:\n    enabled: true\n    embedder: {url: "http://127.0.0.1:9/v1/embeddings", model: no-such-embedder}\n',
  }), /cache\.semantic\.embedder\.model: no price/);
  cleanup(d);
});
