// upstream_client: the gateway's own HTTP/1.1 upstream client (src/http/
// upstream.c) against the mock provider, through the real binary:
//  - keep-alive: sequential calls, streamed and not, share one upstream
//    connection (one worker, so one pool);
//  - a mock that closes each connection once idle: every call still
//    succeeds (a pooled connection the server closed is dropped or retried);
//  - "localhost" in base_url, resolved by the loop's asynchronous resolver;
//  - HTTPS with a CA made here with the openssl CLI: verified with the
//    provider's ca_file (by name and by IP address), refused without it (the
//    system store does not know the CA) and refused for a certificate naming
//    another host; the refusal is a connect failure with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock } from '../mock/provider.mjs';
import { startGateway, ledgerRows, KEY, sha256, cleanup } from '../lib/harness.mjs';

let dir;
const gateways = [];
const mocks = [];

function writeCfg(name, providers) {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
server:
  listen: "127.0.0.1:0"
  workers: 1
  log_level: warn
ledger:
  path: "${join(dir, `${name}.db`)}"
providers:
${providers}
keys:
  - name: test
    sha256: "${sha256(KEY)}"
    tenant: t1
    user: u1
`);
  return path;
}

function provider(name, api, url, models, extra = '') {
  return `  - name: ${name}
    api: ${api}
    base_url: "${url}"
    api_key_env: CG_TEST_OPENAI_KEY
    models: [${models}]
${extra}`;
}

async function gateway(name, providers) {
  const g = await startGateway({ dir, configPath: writeCfg(name, providers), ledger: join(dir, `${name}.db`) });
  gateways.push(g);
  return g;
}

async function chat(g, { stream = false, model = 'gpt-4o-mini', text = 'hello' } = {}) {
  const r = await fetch(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: text }] }),
  });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA, and a server certificate it signs for the given subjectAltName.
function makeCert(name, san) {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n`);
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${name}`,
    '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.pem`)) };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'costgate-upstream-'));
});

after(async () => {
  for (const g of gateways) await g.stop();
  for (const m of mocks) await m.close();
  cleanup(dir);
});

test('keep-alive: sequential calls, streamed and not, share one upstream connection', async () => {
  const mock = await startMock();
  mocks.push(mock);
  const g = await gateway('keepalive', provider('openai', 'openai', mock.url, '"gpt-*"'));
  for (let i = 0; i < 12; i++) {
    const r = await chat(g, { stream: i % 2 === 1, text: `call ${i}` });
    assert.equal(r.status, 200, r.body);
  }
  assert.equal(mock.requests.length, 12);
  assert.deepEqual(mock.connections(), { opened: 1, open: 1 });
  assert.equal(new Set(mock.requests.map((q) => q.conn)).size, 1);
  // what went up: our request line, Host, Content-Length, and no curl-isms
  const h = mock.requests[0].headers;
  assert.equal(h.host, `127.0.0.1:${mock.port}`);
  assert.equal(h['content-type'], 'application/json');
  assert.equal(h.authorization, 'Bearer sk-upstream-openai-secret');
  assert.equal(h.expect, undefined);
  assert.equal(h['transfer-encoding'], undefined);
  assert.equal(Number(h['content-length']) > 0, true);
  const rows = ledgerRows(g.ledger);
  assert.equal(rows.length, 12);
  assert.ok(rows.every((r) => r.status === 'ok' && r.cost_total > 0 && r.estimated === 0));
});

test('the mock closes each connection once idle: every call still succeeds', async () => {
  const mock = await startMock();
  mocks.push(mock);
  const g = await gateway('idleclose', provider('openai', 'openai', mock.url, '"gpt-*"'));
  for (let i = 0; i < 6; i++) {
    const r = await chat(g, { stream: i % 2 === 0 });
    assert.equal(r.status, 200, r.body);
    // the next call races the FIN: the gateway either sees the pooled
    // connection close first, or reuses it and retries on a fresh one
    mock.server.closeIdleConnections();
  }
  assert.equal(mock.requests.length, 6);
  assert.equal(mock.connections().opened, 6);
  const rows = ledgerRows(g.ledger);
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => r.status === 'ok'));
});

test('base_url with "localhost": resolved without blocking the loop', async () => {
  const mock = await startMock();
  mocks.push(mock);
  const g = await gateway('localhost', provider('openai', 'openai', `http://localhost:${mock.port}`, '"gpt-*"'));
  for (const stream of [false, true]) {
    const r = await chat(g, { stream });
    assert.equal(r.status, 200, r.body);
  }
  assert.equal(mock.requests[0].headers.host, `localhost:${mock.port}`);
  assert.equal(mock.connections().opened, 1);
});

test('HTTPS: verified with ca_file, refused without it or for another name', async () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=costgate test CA');
  const good = await startMock({ tls: makeCert('server', 'DNS:localhost,IP:127.0.0.1') });
  const other = await startMock({ tls: makeCert('other', 'DNS:other.example') });
  mocks.push(good, other);
  const ca = join(dir, 'ca.pem');
  const g = await gateway('https', [
    provider('byname', 'openai', `https://localhost:${good.port}`, '"gpt-4o-mini"', `    ca_file: "${ca}"\n`),
    provider('byip', 'openai', `https://127.0.0.1:${good.port}`, '"gpt-4o"', `    ca_file: "${ca}"\n`),
    provider('nocafile', 'openai', `https://localhost:${good.port}`, '"gpt-4.1"'),
    provider('wrongname', 'openai', `https://localhost:${other.port}`, '"gpt-4.1-mini"', `    ca_file: "${ca}"\n`),
  ].join(''));
  for (const model of ['gpt-4o-mini', 'gpt-4o']) {
    for (const stream of [false, true]) {
      const r = await chat(g, { model, stream });
      assert.equal(r.status, 200, `${model} ${stream}: ${r.body}`);
      if (stream) assert.match(r.body, /data: \[DONE\]/);
      else assert.equal(JSON.parse(r.body).object, 'chat.completion');
    }
  }
  assert.equal(good.requests.length, 4);
  assert.equal(good.connections().opened, 2); // one per pool key (host name, IP)

  const refused = await chat(g, { model: 'gpt-4.1' });
  assert.equal(refused.status, 502, refused.body);
  assert.match(JSON.parse(refused.body).error.message, /could not be reached.*certificate verif/i);
  const mismatch = await chat(g, { model: 'gpt-4.1-mini' });
  assert.equal(mismatch.status, 502, mismatch.body);
  assert.match(JSON.parse(mismatch.body).error.message, /certificate verif/i);
  assert.equal(other.requests.length, 0);
  assert.equal(good.requests.length, 4); // the refused call sent nothing

  const rows = ledgerRows(g.ledger);
  assert.equal(rows.length, 6);
  const failed = rows.filter((r) => r.status !== 'ok');
  assert.equal(failed.length, 2);
  for (const r of failed) {
    assert.equal(r.status, 'connect_failed');
    assert.equal(r.cost_total, 0); // never sent: not billed
    assert.match(r.error, /certificate verification failed/);
  }
});

test('ca_file needs an https base_url and a readable file', async () => {
  const bad = [
    [provider('p', 'openai', 'http://127.0.0.1:1', '"gpt-*"', `    ca_file: "${join(dir, 'ca.pem')}"\n`), /needs an https/],
    [provider('p', 'openai', 'https://127.0.0.1:1', '"gpt-*"', `    ca_file: "${join(dir, 'missing.pem')}"\n`), /cannot read/],
  ];
  for (const [prov, re] of bad) {
    await assert.rejects(gateway('badca', prov), (e) => re.test(e.message) && /ca_file/.test(e.message));
  }
});
