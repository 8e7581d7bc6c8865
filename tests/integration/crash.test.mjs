// crash: kill -9 the gateway repeatedly under a mixed load (OpenAI and
// Anthropic, stream and not, 8 concurrent clients), restarting it on the same
// ledger each time. Every request whose complete response reached the client
// (non-stream: 200 and the whole JSON body; stream: the terminal [DONE] /
// message_stop, which is held until the row is committed) has exactly one
// ledger row; no (request_id, attempt) is written twice; the ledger file
// passes SQLite's integrity check. And deterministically: rows spooled but
// not yet committed when the gateway is killed (a 1 s commit delay) are in
// the ledger, once each, after the restart, and the dead process's spool
// ring is gone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, cleanup, sleep } from '../lib/harness.mjs';

let mock, dir;
before(async () => {
  mock = await startMock({ port: 0, host: '127.0.0.1', record: false });
  dir = mkdtempSync(join(tmpdir(), 'costgate-crash-'));
});
after(async () => { await mock.close(); cleanup(dir); });

const KINDS = [
  { api: 'openai', stream: false }, { api: 'openai', stream: true },
  { api: 'anthropic', stream: false }, { api: 'anthropic', stream: true },
];

function requestFor(kind, n) {
  // some calls are quick, some take a while, so kills land mid-request too
  const slow = n % 3 === 0 ? (kind.stream ? ',drip=15' : ',delay=150') : '';
  const content = `crash load ${n} [[mock:words=${8 + (n % 20)}${slow}]]`;
  if (kind.api === 'openai') {
    return { path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEY}` },
      body: { model: 'gpt-4o-mini', stream: kind.stream, messages: [{ role: 'user', content }] } };
  }
  return { path: '/v1/messages', headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    body: { model: 'claude-haiku-4-5', max_tokens: 300, stream: kind.stream, messages: [{ role: 'user', content }] } };
}

// One request; resolves to its id if the complete response arrived, else null.
async function one(url, kind, n) {
  const q = requestFor(kind, n);
  try {
    const res = await fetch(url + q.path, {
      method: 'POST', headers: { 'content-type': 'application/json', ...q.headers },
      body: JSON.stringify(q.body), signal: AbortSignal.timeout(5000),
    });
    const id = res.headers.get('x-costgate-request-id');
    const text = await res.text();
    if (res.status !== 200) return { id: null, status: res.status };
    if (!kind.stream) {
      JSON.parse(text); // the whole body, or this throws
      return { id, kind };
    }
    const terminal = kind.api === 'openai' ? /\ndata: \[DONE\]\n\n$|^data: \[DONE\]\n\n$/ : /event: message_stop\ndata: [^\n]*\n\n$/;
    return terminal.test(text) ? { id, kind } : { id: null };
  } catch {
    return { id: null }; // the gateway died under us: no complete response
  }
}

test('kill -9 under load, restart on the same ledger: one row per completed response', async (t) => {
  const ledger = join(dir, 'ledger.db');
  const completed = new Map(); // id -> kind
  let sent = 0, failed = 0, n = 0;
  const ROUNDS = 6;
  for (let round = 0; round < ROUNDS; round++) {
    const gw = await startGateway({ mockPort: mock.port, ledger, dir });
    let stop = false;
    const client = async () => {
      while (!stop) {
        const k = KINDS[Math.floor(Math.random() * KINDS.length)];
        sent++;
        const r = await one(gw.url, k, n++);
        if (r.id) {
          assert.ok(!completed.has(r.id), `request id ${r.id} reused`);
          completed.set(r.id, r.kind);
        } else failed++;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await sleep(300 + Math.floor(Math.random() * 500));
    await gw.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    assert.equal(gw.exited().sig, 'SIGKILL');
  }
  // a last clean run on the same file: it opens, serves and stops cleanly
  const gw = await startGateway({ mockPort: mock.port, ledger, dir });
  const last = await one(gw.url, KINDS[1], n++);
  assert.ok(last.id, 'the gateway serves after the crashes');
  completed.set(last.id, last.kind);
  await gw.stop();

  t.diagnostic(`${ROUNDS} kills; ${sent} requests sent, ${completed.size} complete, ${failed} cut off by a kill`);
  assert.ok(completed.size > 50, `enough completed requests to mean something (${completed.size} of ${sent})`);
  assert.ok(failed > 0 || ROUNDS === 0, 'kills landed mid-request');

  const integrity = execFileSync('sqlite3', [ledger, 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim();
  assert.equal(integrity, 'ok');
  const dups = execFileSync('sqlite3', [ledger, 'SELECT request_id, attempt, COUNT(*) FROM ledger GROUP BY 1, 2 HAVING COUNT(*) > 1;'], { encoding: 'utf8' }).trim();
  assert.equal(dups, '', 'no (request_id, attempt) twice');

  const rows = ledgerRows(ledger);
  t.diagnostic(`${rows.length} ledger rows: ${rows.length - completed.size} for requests the client never saw complete`);
  const byId = new Map();
  for (const r of rows) byId.set(r.request_id, (byId.get(r.request_id) || []).concat(r));
  const missing = [...completed.keys()].filter((id) => !byId.has(id));
  assert.deepEqual(missing, [], `completed responses without a ledger row (${missing.length} of ${completed.size})`);
  for (const [id, kind] of completed) {
    const rs = byId.get(id);
    assert.equal(rs.length, 1, `exactly one row for ${id}`);
    assert.equal(rs[0].status, 'ok', `${id}: ${rs[0].status}`);
    assert.equal(rs[0].stream, kind.stream ? 1 : 0);
    assert.equal(rs[0].api, kind.api);
  }
  for (const r of rows) {
    if (r.status === 'ok') {
      assert.ok(r.cost_total > 0, `ok row ${r.request_id} priced at zero`);
      assert.ok(r.tok_input > 0 && r.tok_output > 0);
    }
  }
});

test('rows spooled, not committed, when the gateway is killed: in the ledger once after the restart', async () => {
  const d = mkdtempSync(join(tmpdir(), 'costgate-spool-'));
  const ledger = join(d, 'ledger.db');
  const count = () => Number(execFileSync('sqlite3', [ledger, 'SELECT count(*) FROM ledger'], { encoding: 'utf8' }).trim() || 0);
  const rings = () => readdirSync(d).filter((n) => n.startsWith('ledger.db-spool-'));
  const gw = await startGateway({ mockPort: mock.port, ledger, dir: d, ledgerConf: '  commit_delay_ms: 1000' });
  const ids = [];
  for (let i = 0; i < 8; i++) {
    const r = await one(gw.url, KINDS[i % 4], 1000 + 3 * i + 1); // quick calls (n % 3 != 0)
    assert.ok(r.id, `request ${i} completed`);
    ids.push(r.id);
  }
  const before = count();
  await gw.kill('SIGKILL');
  assert.ok(before < ids.length, `some rows were still only spooled at the kill (${before} of ${ids.length} committed)`);
  assert.equal(rings().length, 2, 'one ring per worker left behind');
  const gw2 = await startGateway({ mockPort: mock.port, ledger, dir: d });
  assert.equal(count(), ids.length, 'recovered before serving');
  const rows = ledgerRows(ledger);
  for (const id of ids) {
    const rs = rows.filter((r) => r.request_id === id);
    assert.equal(rs.length, 1, `exactly one row for ${id}`);
    assert.equal(rs[0].status, 'ok');
    assert.ok(rs[0].cost_total > 0);
  }
  assert.ok(/recovered \d+ rows from/.test(gw2.stderr()), gw2.stderr());
  await gw2.stop();
  assert.deepEqual(rings(), [], 'rings removed: recovered, and drained at a clean stop');
  cleanup(d);
});
