// harness: starts the real costgate binary (COSTGATE_BIN) against the mock
// provider on loopback, with a throw-away config and SQLite ledger, and reads
// the ledger back with the sqlite3 CLI. Shared by tests/integration,
// tests/e2e and bench/.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, readdirSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');
export const BIN = process.env.COSTGATE_BIN || join(ROOT, 'build', 'costgate');

export const KEY = 'cg-test-key';                 // may assert attribution headers
export const KEY_PLAIN = 'cg-test-key-plain';     // may not
export const ADMIN_KEY = 'cg-test-admin-key';
export const sha256 = (s) => createHash('sha256').update(s).digest('hex');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

export async function startMockProcess() {
  const child = spawn(process.execPath, [join(ROOT, 'tests/mock/provider.mjs'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/MOCK_LISTENING (\d+)/);
      if (m) res(Number(m[1]));
    });
    child.on('exit', (c) => rej(new Error(`mock exited ${c}`)));
  });
  return { port, child, close: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) };
}

// Writes a config. `server` is raw YAML appended under `server:`, `pricing`
// replaces the pricing section's body, `extraKeys` adds entries under `keys:`
// and `extra` is raw YAML appended at the top level (e.g. `budgets:`, `slos:`).
export function writeConfig(dir, { mockPort, ledger, workers = 2, server = '', pricing = '', admin = true, extraKeys = '', extra = '', ledgerConf = '' }) {
  const cfg = `
server:
  listen: "127.0.0.1:0"
  workers: ${workers}
  log_level: warn
${server}
${admin ? `admin:
  listen: "127.0.0.1:0"
  key_sha256: "${sha256(ADMIN_KEY)}"` : ''}
ledger:
  path: "${ledger}"
${ledgerConf}
pricing:
${pricing || '  unknown_model: reject'}
providers:
  - name: openai
    api: openai
    base_url: "http://127.0.0.1:${mockPort}"
    api_key_env: CG_TEST_OPENAI_KEY
    models: ["gpt-*", "o1*", "o3*", "o4*", "text-embedding-*", "unpriced-*"]
  - name: anthropic
    api: anthropic
    base_url: "http://127.0.0.1:${mockPort}"
    api_key_env: CG_TEST_ANTHROPIC_KEY
    models: ["claude-*"]
keys:
  - name: test
    sha256: "${sha256(KEY)}"
    tenant: t1
    user: u1
    segment: seg1
    allow_attribution: true
  - name: plain
    sha256: "${sha256(KEY_PLAIN)}"
    tenant: t2
    user: u2
    allow_attribution: false
${extraKeys}
${extra}
`;
  const path = join(dir, 'costgate.yaml');
  writeFileSync(path, cfg);
  return path;
}

// Starts the gateway. Returns { url, port, adminUrl, ledger, dir, stop(), kill(sig), stderr() }.
export async function startGateway(opts = {}) {
  const dir = opts.dir || mkdtempSync(join(tmpdir(), 'costgate-test-'));
  const ledger = opts.ledger || join(dir, 'ledger.db');
  const cfgPath = opts.configPath || writeConfig(dir, { ...opts, ledger });
  const portFile = join(dir, `port-${Date.now()}-${Math.random()}`);
  let stderr = '';
  const env = { ...process.env, CG_TEST_OPENAI_KEY: 'sk-upstream-openai-secret',
    CG_TEST_ANTHROPIC_KEY: 'sk-ant-upstream-secret', ...(opts.env || {}) };
  const child = spawn(BIN, ['serve', '-c', cfgPath, '--port-file', portFile],
    { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.on('data', () => {});
  let exited = null;
  const exitP = new Promise((r) => child.on('exit', (code, sig) => { exited = { code, sig }; r(exited); }));
  for (let i = 0; i < 400 && !exited; i++) {
    if (existsSync(portFile) && readFileSync(portFile, 'utf8').includes('\n')) break;
    await sleep(25);
  }
  if (exited || !existsSync(portFile)) throw new Error(`gateway did not start: ${stderr}`);
  const [port, adminPort] = readFileSync(portFile, 'utf8').trim().split(/\s+/).map(Number);
  const g = {
    dir, ledger, port, adminPort, child, cfgPath,
    url: `http://127.0.0.1:${port}`,
    adminUrl: adminPort ? `http://127.0.0.1:${adminPort}` : null,
    stderr: () => stderr,
    exited: () => exited,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const r = await exitP;
      const bad = /AddressSanitizer|runtime error:|LeakSanitizer/.test(stderr);
      if (bad) throw new Error(`sanitizer report from the gateway:\n${stderr}`);
      if (r.code !== 0) throw new Error(`gateway exited ${r.code}/${r.sig}:\n${stderr}`);
      return r;
    },
    async kill(sig = 'SIGKILL') { child.kill(sig); return exitP; },
  };
  return g;
}

// One look at the spool rings: how many have records not yet committed, and
// a fingerprint of their progress.
function spoolState(ledger) {
  const dir = dirname(ledger), prefix = basename(ledger) + '-spool-';
  let pending = 0, state = '', names = [];
  try { names = readdirSync(dir).filter((n) => n.startsWith(prefix)); } catch { return null; }
  for (const n of names) {
    let fd;
    try {
      fd = openSync(join(dir, n), 'r');
      const h = Buffer.alloc(136);
      if (readSync(fd, h, 0, 136, 0) === 136) {
        const committed = h.readBigUInt64LE(64), head = h.readBigUInt64LE(128);
        if (head > committed) pending++;
        state += `${n}:${committed};`;
      }
    } catch { /* removed meanwhile */ } finally { if (fd !== undefined) closeSync(fd); }
  }
  return { pending, state };
}

// Yields how long to nap before the next look (the caller naps, blocking or
// not); ends when every ring is drained, stalled or out of time.
function* spoolWaiter(ledger, ms) {
  const t0 = Date.now();
  let last = '', since = Date.now();
  for (;;) {
    const s = spoolState(ledger);
    if (!s || !s.pending) return;
    if (s.state !== last) { last = s.state; since = Date.now(); }
    if (Date.now() - since > 300 || Date.now() - t0 > ms) return;
    yield 2;
  }
}

// The gateway spools a settled request's row (docs/ledger.md) and its
// writer moves it into SQLite a few ms later. Waits until every spool ring of
// this ledger is drained (the header's committed == head: u64 at offsets 64
// and 128), so a test reads the rows of the answers it has. A ring whose
// process is gone (kill -9) makes no progress: after 300 ms without any it is
// left for the next start to recover.
export function waitSpool(ledger, ms = 3000) {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (const d of spoolWaiter(ledger, ms)) Atomics.wait(nap, 0, 0, d);
}

// The same without blocking the event loop: for tests that run the mock
// provider in their own process while a gateway is still streaming from it.
export async function waitSpoolAsync(ledger, ms = 3000) {
  for (const d of spoolWaiter(ledger, ms)) await sleep(d);
}

const rowsQuery = (ledger, where) =>
  ['-json', ledger, `SELECT * FROM ledger WHERE ${where} ORDER BY ts_ms, request_id`];

// Ledger rows as objects (sqlite3 -json). `where` is trusted test SQL.
export function ledgerRows(ledger, where = '1=1') {
  waitSpool(ledger);
  const out = execFileSync('sqlite3', rowsQuery(ledger, where), { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

export async function ledgerRowsAsync(ledger, where = '1=1') {
  await waitSpoolAsync(ledger);
  const { stdout } = await execFileP('sqlite3', rowsQuery(ledger, where), { encoding: 'utf8' });
  return stdout.trim() ? JSON.parse(stdout) : [];
}

// Rows are visible a few ms after the client has its answer (ledgerRows
// waits for the spool); this bounds rows that settle later (a client that
// left mid-stream, a drain). It never blocks the event loop: a mock provider
// in this process keeps streaming to the gateway meanwhile.
export async function waitRows(ledger, where, n, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const rows = existsSync(ledger) ? await ledgerRowsAsync(ledger, where) : [];
    if (rows.length >= n || Date.now() - t0 > ms) return rows;
    await sleep(20);
  }
}

export function cleanup(dir) { try { rmSync(dir, { recursive: true, force: true }); } catch { /* gone */ } }

export { sleep };
