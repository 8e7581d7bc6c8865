// cache_util: helpers shared by the exact-cache tests (tests/integration/
// cache*.test.mjs and tests/e2e/*cache*.test.mjs): raw HTTP calls to the
// gateway for both APIs, an SSE parser, admin and feedback calls, and the
// hand-written per-token prices the ledger checks use.
import { KEY, ADMIN_KEY, sha256 } from '../lib/harness.mjs';

// Built-in prices (src/cost/prices.c), nano-USD per token.
export const PRICE = {
  'gpt-4o-mini': { input: 150, output: 600 },
  'gpt-4o': { input: 2500, output: 10000 },
  'claude-haiku-4-5': { input: 1000, output: 5000 },
};

export const OAI = {
  path: '/v1/chat/completions',
  auth: (k) => ({ authorization: `Bearer ${k}` }),
};
export const ANT = {
  path: '/v1/messages',
  auth: (k) => ({ 'x-api-key': k, 'anthropic-version': '2023-06-01' }),
};

export const uniq = (s = '') => `${s} ${Math.random().toString(36).slice(2, 10)}`;

export const keyYaml = (name, key, tenant, extra = '') => `  - name: ${name}
    sha256: "${sha256(key)}"
    tenant: ${tenant}
    user: u-${tenant}
${extra}`;

// Parses an SSE body into [{event, data (string), json (parsed or null), comment}].
export function sseEvents(text) {
  return text.split(/\n\n/).filter((b) => b.trim()).map((b) => {
    const ev = {};
    for (const line of b.split('\n')) {
      if (line.startsWith(':')) { ev.comment = line; continue; }
      const i = line.indexOf(':');
      const k = line.slice(0, i), v = line.slice(i + 1).replace(/^ /, '');
      ev[k] = ev[k] ? ev[k] + '\n' + v : v;
    }
    try { ev.json = ev.data && ev.data !== '[DONE]' ? JSON.parse(ev.data) : null; } catch { ev.json = undefined; }
    return ev;
  });
}

// POSTs a body to the gateway; returns status, headers, text, json, id, cache.
export async function call(gw, api, body, { key = KEY, headers = {} } = {}) {
  const res = await fetch(gw.url + api.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...api.auth(key), ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a stream */ }
  return {
    status: res.status, headers: res.headers, text, json,
    id: res.headers.get('x-costgate-request-id'),
    cache: res.headers.get('x-costgate-cache'),
  };
}

export const admin = (gw, path, init = {}) => fetch(gw.adminUrl + path, {
  ...init,
  headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
});

export async function invalidate(gw, body) {
  const res = await admin(gw, '/admin/cache/invalidate', { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

export async function stats(gw) {
  return (await admin(gw, '/admin/cache/stats')).json();
}

export async function feedback(gw, body, key = KEY) {
  const res = await fetch(gw.url + '/v1/feedback', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

export async function setClock(gw, now_ms) {
  const res = await admin(gw, '/admin/test/clock', { method: 'POST', body: JSON.stringify({ now_ms }) });
  if (res.status !== 200) throw new Error(`test clock: ${res.status} ${await res.text()}`);
}

// Text of an OpenAI stream's content deltas (choice 0) and its finish reason.
export function openaiStreamText(events) {
  let text = '', finish = null, usage = null;
  for (const e of events) {
    if (!e.json) continue;
    if (e.json.usage) usage = e.json.usage;
    for (const c of e.json.choices || []) {
      if (c.index !== 0) continue;
      text += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  return { text, finish, usage };
}

// Text of an Anthropic stream's text deltas, its stop reason and output tokens.
export function anthropicStreamText(events) {
  let text = '', stop = null, output = null, input = null;
  for (const e of events) {
    if (!e.json) continue;
    if (e.event === 'message_start') input = e.json.message.usage.input_tokens;
    if (e.event === 'content_block_delta' && e.json.delta.type === 'text_delta') text += e.json.delta.text;
    if (e.event === 'message_delta') {
      stop = e.json.delta.stop_reason;
      output = e.json.usage.output_tokens;
    }
  }
  return { text, stop, output, input };
}
