// cache_restart: exact-cache entries survive a restart, in the ledger file.
//  - entries stored before a graceful stop serve hits after the restart
//    without an upstream call, with their writer, and their hit counters
//    persist; expired entries are neither loaded nor kept
//  - an entry's row is written at its first hit (a miss alone writes none,
//    so misses cost no more than the plain proxy); from then on it survives
//    kill -9
//  - a ledger made before schema v3 (no cache columns, no cache tables) is
//    upgraded when the gateway opens it, its rows kept
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, cleanup, sleep } from '../lib/harness.mjs';
import { OAI, ANT, uniq, call, setClock } from './cache_util.mjs';

const sql = (db, q) => {
  const out = execFileSync('sqlite3', ['-json', db, q], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
};

const dirs = [];
const gws = [];
let mock;
after(async () => {
  for (const g of gws) if (!g.exited()) await g.kill('SIGKILL');
  if (mock) await mock.close();
  for (const d of dirs) cleanup(d);
});
async function start(opts) {
  const g = await startGateway(opts);
  gws.push(g);
  return g;
}

const chatBody = (content) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
const msgBody = (content) => ({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content }] });

async function upstream(fn) {
  const n0 = mock.requests.length;
  await fn();
  return mock.requests.length - n0;
}

test('a stored answer nobody asked for again is not written until the stop', async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1' });
  const dir = mkdtempSync(join(tmpdir(), 'costgate-cache-lazy-'));
  dirs.push(dir);
  const gw = await start({ mockPort: mock.port, dir, extra: 'cache: {}\n' });
  const miss = await call(gw, OAI, chatBody(uniq('asked once')));
  // later requests' rows commit after anything queued before them
  await call(gw, OAI, chatBody(uniq('another')));
  assert.equal(sql(gw.ledger, `SELECT 1 FROM cache_entries WHERE writer_id='${miss.id}'`).length, 0);
  await gw.stop();
  assert.equal(sql(gw.ledger, `SELECT 1 FROM cache_entries WHERE writer_id='${miss.id}'`).length, 1);
});

test('entries survive a graceful restart; expired ones do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'costgate-cache-restart-'));
  dirs.push(dir);
  const opts = { mockPort: mock.port, dir, extra: 'cache: {}\n', env: { COSTGATE_TEST_CLOCK: '1' } };
  let gw = await start(opts);
  const a = chatBody(uniq('survive a restart'));
  const b = msgBody(uniq('anthropic survives too'));
  const c = chatBody(uniq('troubleshoot me, then expire'));
  const missA = await call(gw, OAI, a);
  await call(gw, OAI, a);
  await call(gw, OAI, a);
  const missB = await call(gw, ANT, b);
  // stored two hours ago with a 30 min TTL: expired by the restart
  await setClock(gw, Date.now() - 2 * 3600 * 1000);
  await call(gw, OAI, c, { headers: { 'x-costgate-intent': 'troubleshoot' } });
  assert.equal((await call(gw, OAI, c, { headers: { 'x-costgate-intent': 'troubleshoot' } })).cache, 'exact');
  await setClock(gw, 0);
  await gw.stop();
  const rowsBefore = sql(gw.ledger, 'SELECT key, hits, writer_id FROM cache_entries');
  assert.equal(rowsBefore.length, 3);
  assert.equal(rowsBefore.find((r) => r.writer_id === missA.id).hits, 2, 'hit counters are persisted at stop');

  gw = await start(opts);
  const calls = await upstream(async () => {
    const ha = await call(gw, OAI, a);
    assert.equal(ha.cache, 'exact');
    assert.equal(ledgerRows(gw.ledger, `request_id='${ha.id}'`)[0].cache_src, missA.id);
    const hb = await call(gw, ANT, b);
    assert.equal(hb.cache, 'exact');
    assert.equal(ledgerRows(gw.ledger, `request_id='${hb.id}'`)[0].cache_src, missB.id);
  });
  assert.equal(calls, 0, 'served from the entries loaded at start');
  assert.equal((await call(gw, OAI, c, { headers: { 'x-costgate-intent': 'troubleshoot' } })).cache, 'miss');
  await gw.stop();
  const rowsAfter = sql(gw.ledger, 'SELECT hits, writer_id, expires_ms FROM cache_entries');
  assert.equal(rowsAfter.find((r) => r.writer_id === missA.id).hits, 3);
  assert.ok(rowsAfter.every((r) => r.expires_ms > Date.now()), 'expired rows were purged at start');
});

test('an entry is written at its first hit, and then survives kill -9', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'costgate-cache-kill-'));
  dirs.push(dir);
  const opts = { mockPort: mock.port, dir, extra: 'cache: {}\n' };
  let gw = await start(opts);
  const a = chatBody(uniq('crash proof'));
  const miss = await call(gw, OAI, a);
  const hit = await call(gw, OAI, a); // the ledger row of this hit commits after the entry's write
  assert.equal(hit.cache, 'exact');
  for (let i = 0; i < 500 && !sql(gw.ledger, `SELECT 1 FROM cache_entries WHERE writer_id='${miss.id}'`).length; i++)
    await sleep(10);
  assert.equal(sql(gw.ledger, `SELECT 1 FROM cache_entries WHERE writer_id='${miss.id}'`).length, 1);
  await gw.kill('SIGKILL');
  gw = await start(opts);
  const calls = await upstream(async () => {
    assert.equal((await call(gw, OAI, a)).cache, 'exact');
  });
  assert.equal(calls, 0);
  await gw.stop();
});

// The ledger table of schema v2 (src/store/ledger_schema.h before the cache).
const V2_LEDGER = `CREATE TABLE ledger ( request_id TEXT NOT NULL, attempt INTEGER NOT NULL,
 ts_ms INTEGER NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, api TEXT NOT NULL,
 tenant TEXT NOT NULL DEFAULT '', user TEXT NOT NULL DEFAULT '', segment TEXT NOT NULL DEFAULT '',
 feature TEXT NOT NULL DEFAULT '', intent TEXT NOT NULL DEFAULT '', key_name TEXT NOT NULL DEFAULT '',
 provider TEXT NOT NULL DEFAULT '', model_requested TEXT NOT NULL DEFAULT '',
 model_served TEXT NOT NULL DEFAULT '', tier TEXT NOT NULL DEFAULT '', stream INTEGER NOT NULL DEFAULT 0,
 status TEXT NOT NULL, http_status INTEGER NOT NULL DEFAULT 0, upstream_status INTEGER NOT NULL DEFAULT 0,
 tok_input_predicted INTEGER NOT NULL DEFAULT 0, tok_input INTEGER NOT NULL DEFAULT 0,
 tok_cached_read INTEGER NOT NULL DEFAULT 0, tok_cache_write_5m INTEGER NOT NULL DEFAULT 0,
 tok_cache_write_1h INTEGER NOT NULL DEFAULT 0, tok_output INTEGER NOT NULL DEFAULT 0,
 tok_reasoning INTEGER NOT NULL DEFAULT 0, tok_embedding INTEGER NOT NULL DEFAULT 0,
 web_searches INTEGER NOT NULL DEFAULT 0, cost_input INTEGER NOT NULL DEFAULT 0,
 cost_output INTEGER NOT NULL DEFAULT 0, cost_embedding INTEGER NOT NULL DEFAULT 0,
 cost_external_api INTEGER NOT NULL DEFAULT 0, cost_storage_compute INTEGER NOT NULL DEFAULT 0,
 cost_total INTEGER NOT NULL DEFAULT 0, baseline_cost INTEGER NOT NULL DEFAULT 0,
 estimated INTEGER NOT NULL DEFAULT 0, unpriced INTEGER NOT NULL DEFAULT 0,
 cache TEXT NOT NULL DEFAULT 'miss', latency_us INTEGER NOT NULL DEFAULT 0,
 ttfb_us INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '',
 PRIMARY KEY (request_id, attempt)) WITHOUT ROWID;
INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, status, cost_total, baseline_cost)
 VALUES ('req_old', 1, 1700000000000, '2023-11-14', 'chat', 'openai', 'ok', 1234, 1234);`;

test('a ledger from before schema v3 is upgraded on open', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'costgate-cache-upgrade-'));
  dirs.push(dir);
  const ledger = join(dir, 'ledger.db');
  execFileSync('sqlite3', [ledger, V2_LEDGER]);
  const gw = await start({ mockPort: mock.port, dir, ledger, extra: 'cache: {}\n' });
  const body = chatBody(uniq('after the upgrade'));
  const miss = await call(gw, OAI, body);
  const hit = await call(gw, OAI, body);
  assert.equal(hit.cache, 'exact');
  await gw.stop();
  const old = ledgerRows(ledger, "request_id='req_old'");
  assert.equal(old.length, 1);
  assert.equal(old[0].cost_total, 1234);
  assert.equal(old[0].cache_key, '');
  assert.equal(ledgerRows(ledger, `request_id='${hit.id}'`)[0].cache_src, miss.id);
  const tables = sql(ledger, "SELECT name FROM sqlite_master WHERE type='table'").map((r) => r.name);
  for (const t of ['cache_entries', 'cache_invalidations', 'feedback']) assert.ok(tables.includes(t), t);
});
