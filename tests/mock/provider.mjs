#!/usr/bin/env node
// costgate mock LLM provider: a dependency-free Node 20 HTTP server that speaks
// the OpenAI (chat completions, embeddings, models) and Anthropic (messages,
// count_tokens, models) APIs the way the real services do, with deterministic
// token accounting and misbehaviour on request. See docs/mock-provider.md.
//
//   node tests/mock/provider.mjs --port 0 [--host 127.0.0.1] [--log FILE]
//        [--no-record] [--record-limit N]
//   -> prints "MOCK_LISTENING <port>" once listening.
//
//   import { startMock } from './provider.mjs';
//   const mock = await startMock({ port: 0 });  // { port, host, url, requests, reset(), close() }

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Small, fast random ids (a pool of crypto bytes, refilled when used up).

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const HEX = '0123456789abcdef';
let pool = randomBytes(16384);
let poolPos = 0;
function rnd(n, alphabet = ALNUM) {
  if (poolPos + n > pool.length) {
    pool = randomBytes(16384);
    poolPos = 0;
  }
  const m = alphabet.length;
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[pool[poolPos++] % m];
  return s;
}
function rndInt(m) {
  if (poolPos >= pool.length) {
    pool = randomBytes(16384);
    poolPos = 0;
  }
  return pool[poolPos++] % m;
}
const FINGERPRINT = 'fp_' + rnd(10, HEX); // one per process, like one deployment
const ORG_ID = [rnd(8, HEX), rnd(4, HEX), '4' + rnd(3, HEX), '8' + rnd(3, HEX), rnd(12, HEX)].join('-');

// ---------------------------------------------------------------------------
// Directives: [[mock:k=v,k2=v2]] in the last user message, or the x-mock header
// ("k=v,k2=v2" or "[[mock:k=v]]"). A bare key means k=1.

const DIRECTIVE_RE = /\[\[mock:([^\]]*)\]\]/g;

function parseDirectiveBody(s, out) {
  for (const part of s.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim();
    const v = eq < 0 ? '1' : p.slice(eq + 1).trim();
    if (!k) continue;
    const n = Number(v);
    out[k] = v !== '' && Number.isFinite(n) ? n : v;
  }
  return out;
}

/** Parse every [[mock:...]] in `text` (later ones win). Returns a plain object. */
export function parseDirectives(text, out = {}) {
  if (typeof text !== 'string' || text.indexOf('[[mock:') < 0) return out;
  DIRECTIVE_RE.lastIndex = 0;
  let m;
  while ((m = DIRECTIVE_RE.exec(text)) !== null) parseDirectiveBody(m[1], out);
  return out;
}

/** Parse the x-mock header value: "k=v,k2" or "[[mock:k=v]]". */
export function parseDirectiveHeader(value, out = {}) {
  if (typeof value !== 'string' || !value) return out;
  if (value.indexOf('[[mock:') >= 0) return parseDirectives(value, out);
  return parseDirectiveBody(value, out);
}

export function stripDirectives(text) {
  return typeof text === 'string' && text.indexOf('[[mock:') >= 0 ? text.replace(DIRECTIVE_RE, '') : text;
}

// ---------------------------------------------------------------------------
// Deterministic token accounting (exported so tests can compute expectations).

const utf8 = (s) => Buffer.byteLength(s, 'utf8');
/** ceil(utf8_bytes(s) / 4); 0 for the empty string. */
export function textTokens(s) {
  return s ? Math.ceil(utf8(s) / 4) : 0;
}

/** Text of an OpenAI chat message, as counted: string content, or the concatenation
 *  of parts' `text`; plus, concatenated, each tool_calls[].function.arguments. */
export function openaiMessageText(m) {
  if (!m || typeof m !== 'object') return '';
  let t = '';
  const c = m.content;
  if (typeof c === 'string') t = c;
  else if (Array.isArray(c)) {
    for (const p of c) if (p && typeof p.text === 'string') t += p.text;
  }
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls) {
      const a = tc && tc.function && tc.function.arguments;
      if (typeof a === 'string') t += a;
    }
  }
  return t;
}

function anthropicBlocksText(c) {
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  let t = '';
  for (const b of c) {
    if (!b || typeof b !== 'object') continue;
    if (typeof b.text === 'string') t += b.text;
    else if (b.type === 'tool_use' && b.input !== undefined) t += JSON.stringify(b.input);
    else if (b.type === 'tool_result') t += anthropicBlocksText(b.content);
    else if (typeof b.thinking === 'string') t += b.thinking;
  }
  return t;
}

/** Text of an Anthropic message (or of `system`), as counted: string content, or the
 *  concatenation of blocks' `text`, tool_use `JSON.stringify(input)`, tool_result content. */
export function anthropicMessageText(m) {
  if (typeof m === 'string' || Array.isArray(m)) return anthropicBlocksText(m);
  return m && typeof m === 'object' ? anthropicBlocksText(m.content) : '';
}

function toolsTokens(tools) {
  return Array.isArray(tools) && tools.length ? textTokens(JSON.stringify(tools)) : 0;
}

/** OpenAI prompt tokens BEFORE the cached=N directive is added:
 *  3 + Σ_messages (3 + ceil(utf8_bytes(text)/4)) + (tools ? ceil(utf8_bytes(JSON.stringify(tools))/4) : 0) */
export function openaiPromptTokens(body) {
  let n = 3;
  const msgs = body && Array.isArray(body.messages) ? body.messages : [];
  for (const m of msgs) n += 3 + textTokens(openaiMessageText(m));
  return n + toolsTokens(body && body.tools);
}

/** Anthropic input tokens (uncached part; cached/cache_write directives are reported separately):
 *  3 + (system non-empty ? 3 + ceil(utf8_bytes(system_text)/4) : 0) + Σ_messages (3 + ceil(utf8_bytes(text)/4))
 *    + (tools ? ceil(utf8_bytes(JSON.stringify(tools))/4) : 0) */
export function anthropicInputTokens(body) {
  let n = 3;
  if (body && body.system !== undefined && body.system !== null) {
    const s = anthropicMessageText(body.system);
    if (s) n += 3 + textTokens(s);
  }
  const msgs = body && Array.isArray(body.messages) ? body.messages : [];
  for (const m of msgs) n += 3 + textTokens(anthropicMessageText(m));
  return n + toolsTokens(body && body.tools);
}

/** Embedding input tokens: strings count ceil(utf8_bytes/4), token arrays count their length. */
export function embeddingTokens(input) {
  let n = 0;
  for (const x of normalizeEmbeddingInput(input)) n += typeof x === 'string' ? textTokens(x) : x.length;
  return n;
}

/** Number of whitespace-separated words. */
export function countWords(s) {
  if (!s) return 0;
  const m = s.match(/\S+/g);
  return m ? m.length : 0;
}

const FILLER = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ' +
  'incididunt ut labore et dolore magna aliqua').split(' ');

/** The snippet of the user's text the answer echoes: directives removed, whitespace
 *  collapsed, trimmed, first 40 code points, trimmed again. */
export function answerSnippet(userText) {
  const s = stripDirectives(typeof userText === 'string' ? userText : '').replace(/\s+/g, ' ').trim();
  if (s.length <= 40) return s;
  const cps = Array.from(s);
  return (cps.length > 40 ? cps.slice(0, 40).join('') : s).trim();
}

/** The full (untruncated) answer: the words of "Mock answer to: <snippet>", cut or
 *  padded with lorem-ipsum filler to exactly `words` words, joined by single spaces. */
export function mockAnswer(userText, words = 8) {
  const base = ('Mock answer to: ' + answerSnippet(userText)).split(' ').filter(Boolean);
  const out = base.length > words ? base.slice(0, words) : base;
  for (let i = 0; out.length < words; i++) out.push(FILLER[i % FILLER.length]);
  return out.join(' ');
}

/** Anthropic thinking text (when the request enables thinking): "Mock thinking about: <snippet>"
 *  cut/padded to `words` words. */
export function mockThinking(userText, words = 8) {
  const base = ('Mock thinking about: ' + answerSnippet(userText)).split(' ').filter(Boolean);
  const out = base.length > words ? base.slice(0, words) : base;
  for (let i = 0; out.length < words; i++) out.push(FILLER[(i + 7) % FILLER.length]);
  return out.join(' ');
}

/** The refusal the `refusal` directive answers with (OpenAI `message.refusal`; Anthropic
 *  text before `stop_reason: "refusal"`). */
export const MOCK_REFUSAL = "I'm sorry, but I can't help with that.";

/** Split text into stream tokens: "a b c" -> ["a", " b", " c"]. One token per word. */
export function tokenize(text) {
  return text ? text.match(/\s*\S+/g) || [] : [];
}

/** Mock arguments for a tool from its JSON schema: every property (or required ones if there
 *  are no properties listed) gets string->"mock", number/integer->1, boolean->true, array->[],
 *  object->{}, enum->first value, anything else->null. */
export function mockToolArguments(schema) {
  const out = {};
  const props = schema && typeof schema === 'object' && schema.properties && typeof schema.properties === 'object'
    ? schema.properties : {};
  for (const k of Object.keys(props)) {
    const p = props[k] || {};
    let t = p.type;
    if (Array.isArray(t)) t = t.find((x) => x !== 'null') || t[0];
    if (Array.isArray(p.enum) && p.enum.length) out[k] = p.enum[0];
    else if (t === 'string') out[k] = 'mock';
    else if (t === 'number' || t === 'integer') out[k] = 1;
    else if (t === 'boolean') out[k] = true;
    else if (t === 'array') out[k] = [];
    else if (t === 'object') out[k] = {};
    else out[k] = null;
  }
  return out;
}

/** Completion/output tokens for a tool call: ceil(utf8_bytes(name)/4) + ceil(utf8_bytes(arguments_json)/4). */
export function toolCallTokens(name, argsJson) {
  return textTokens(name) + textTokens(argsJson);
}

function lastUserText(messages, textOf) {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user') return textOf(m);
  }
  return '';
}

function lastRole(messages) {
  const m = Array.isArray(messages) && messages.length ? messages[messages.length - 1] : null;
  return m && m.role;
}

function hasToolResult(m) {
  return !!(m && Array.isArray(m.content) && m.content.some((b) => b && b.type === 'tool_result'));
}

function num(v, dflt) {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}

function applyStops(text, stops) {
  if (stops == null) return null;
  const list = Array.isArray(stops) ? stops : [stops];
  let best = -1;
  let which = null;
  for (const s of list) {
    if (typeof s !== 'string' || !s) continue;
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) {
      best = i;
      which = s;
    }
  }
  return best < 0 ? null : { text: text.slice(0, best), stop: which };
}

// ---------------------------------------------------------------------------
// Plans: what the mock will answer for a request (shared by stream / non-stream
// and by the exported expected-usage helpers).

/** Plan an OpenAI chat completion. `dir` = merged directives. */
export function planChat(body, dir = {}) {
  const user = lastUserText(body.messages, openaiMessageText);
  const words = Math.max(0, Math.floor(num(dir.words, 8)));
  const maxTok = num(body.max_completion_tokens, num(body.max_tokens, null));
  const n = Math.max(1, Math.floor(num(body.n, 1)));
  const reasoning = Math.max(0, Math.floor(num(dir.reasoning, 0)));
  const cached = Math.max(0, Math.floor(num(dir.cached, 0)));
  const prompt = openaiPromptTokens(body) + cached;
  let tool = null;
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => t && t.function && t.function.name) : [];
  const tc = body.tool_choice;
  const forced = tc === 'required' || (tc && typeof tc === 'object');
  if ((dir.tool || forced) && tools.length && tc !== 'none' && lastRole(body.messages) === 'user') {
    let fn = tools[0].function;
    if (tc && typeof tc === 'object' && tc.function && tc.function.name) {
      fn = (tools.find((t) => t.function.name === tc.function.name) || tools[0]).function;
    }
    const args = JSON.stringify(mockToolArguments(fn.parameters));
    tool = { name: fn.name, arguments: args, tokens: toolCallTokens(fn.name, args) };
  }
  let text = '';
  let tokens = [];
  let finish = 'stop';
  let perChoice;
  let refusal = null;
  if (tool) {
    finish = 'tool_calls';
    perChoice = tool.tokens;
  } else if (dir.refusal) {
    refusal = MOCK_REFUSAL;
    tokens = tokenize(refusal);
    perChoice = tokens.length;
  } else {
    text = mockAnswer(user, words);
    tokens = tokenize(text);
    if (maxTok !== null && tokens.length > maxTok) {
      tokens = tokens.slice(0, Math.max(0, maxTok));
      text = tokens.join('');
      finish = 'length';
    }
    const st = applyStops(text, body.stop);
    if (st) {
      text = st.text;
      tokens = tokenize(text);
      finish = 'stop';
    }
    perChoice = tokens.length;
  }
  const completion = n * perChoice + reasoning;
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  return { n, text, tokens, finish, tool, refusal, usage };
}

/** Plan an Anthropic message. */
export function planMessages(body, dir = {}) {
  const user = lastUserText(body.messages, anthropicMessageText);
  const words = Math.max(0, Math.floor(num(dir.words, 8)));
  const maxTok = num(body.max_tokens, null);
  const cached = Math.max(0, Math.floor(num(dir.cached, 0)));
  const w5 = Math.max(0, Math.floor(num(dir.cache_write, 0)));
  const w1h = Math.max(0, Math.floor(num(dir.cache_write_1h, 0)));
  const th = body.thinking;
  const thinkingOn = !!(th && typeof th === 'object' && (th.type === 'enabled' || th.type === 'adaptive'));
  let thinking = null;
  if (thinkingOn) {
    const tw = Math.max(0, Math.floor(num(dir.reasoning, 8)));
    const t = mockThinking(user, tw);
    thinking = { text: t, tokens: tokenize(t), signature: 'Eq' + rnd(62, ALNUM) + '==' };
  }
  let tool = null;
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => t && typeof t.name === 'string' && t.input_schema) : [];
  const tc = body.tool_choice;
  const forced = !!(tc && (tc.type === 'any' || tc.type === 'tool'));
  if ((dir.tool || forced) && tools.length && !(tc && tc.type === 'none') && lastRole(body.messages) === 'user' &&
      !hasToolResult(body.messages[body.messages.length - 1])) {
    let t = tools[0];
    if (tc && tc.type === 'tool' && tc.name) t = tools.find((x) => x.name === tc.name) || t;
    const input = mockToolArguments(t.input_schema);
    const json = JSON.stringify(input);
    tool = { name: t.name, input, json, tokens: toolCallTokens(t.name, json) };
  }
  let text = '';
  let tokens = [];
  let stopReason = 'end_turn';
  let stopSequence = null;
  const thinkTok = thinking ? thinking.tokens.length : 0;
  let output;
  if (tool) {
    stopReason = 'tool_use';
    output = thinkTok + tool.tokens;
  } else if (dir.refusal) {
    text = MOCK_REFUSAL;
    tokens = tokenize(text);
    stopReason = 'refusal';
    output = thinkTok + tokens.length;
  } else {
    text = mockAnswer(user, words);
    tokens = tokenize(text);
    if (maxTok !== null && thinkTok + tokens.length > maxTok) {
      tokens = tokens.slice(0, Math.max(0, maxTok - thinkTok));
      text = tokens.join('');
      stopReason = 'max_tokens';
    }
    const st = applyStops(text, body.stop_sequences);
    if (st) {
      text = st.text;
      tokens = tokenize(text);
      stopReason = 'stop_sequence';
      stopSequence = st.stop;
    }
    output = thinkTok + tokens.length;
  }
  const usage = {
    input_tokens: anthropicInputTokens(body),
    cache_creation_input_tokens: w5 + w1h,
    cache_read_input_tokens: cached,
    cache_creation: { ephemeral_5m_input_tokens: w5, ephemeral_1h_input_tokens: w1h },
    output_tokens: output,
    service_tier: 'standard',
  };
  return { text, tokens, thinking, tool, stopReason, stopSequence, usage };
}

function mergedDirectives(xmock, userText) {
  const d = {};
  if (xmock) parseDirectiveHeader(xmock, d);
  parseDirectives(userText, d);
  return d;
}

/** Usage object the mock reports for this OpenAI chat request body (x-mock header optional). */
export function expectedChatUsage(body, xmock) {
  return planChat(body, mergedDirectives(xmock, lastUserText(body.messages, openaiMessageText))).usage;
}

/** Usage object the mock reports for this Anthropic messages request body (x-mock header optional). */
export function expectedMessagesUsage(body, xmock) {
  return planMessages(body, mergedDirectives(xmock, lastUserText(body.messages, anthropicMessageText))).usage;
}

// ---------------------------------------------------------------------------
// Embeddings: bag-of-words vectors, so texts with the same words (any order,
// case or punctuation) get identical vectors and overlapping texts are similar.

function normalizeEmbeddingInput(input) {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  if (input.length && typeof input[0] === 'number') return [input];
  return input;
}

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Deterministic unit vector (Float32Array of `dims`) for a string or a token array. */
export function mockEmbedding(input, dims = 8) {
  let words;
  if (typeof input === 'string') {
    words = stripDirectives(input).toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  } else {
    words = (input || []).map((t) => '#' + t);
  }
  if (!words.length) words = [''];
  const acc = new Float64Array(dims);
  for (const w of words) {
    let a = fnv1a(w) || 1;
    for (let i = 0; i < dims; i++) {
      // mulberry32
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      acc[i] += ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
    }
  }
  let norm = 0;
  for (let i = 0; i < dims; i++) norm += acc[i] * acc[i];
  norm = Math.sqrt(norm) || 1;
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = acc[i] / norm;
  return out;
}

function f32ToBase64(f) {
  const b = Buffer.allocUnsafe(f.length * 4);
  for (let i = 0; i < f.length; i++) b.writeFloatLE(f[i], i * 4);
  return b.toString('base64');
}

// ---------------------------------------------------------------------------
// Models

const OPENAI_MODELS = [
  ['gpt-4o', 1715367049], ['gpt-4o-mini', 1721172741], ['gpt-4.1', 1744316542],
  ['gpt-4.1-mini', 1744318173], ['gpt-4.1-nano', 1744321707], ['o3-mini', 1737146383],
  ['o4-mini', 1744225351], ['gpt-5', 1754425777], ['gpt-5-mini', 1754425928],
  ['text-embedding-3-small', 1705948997], ['text-embedding-3-large', 1705953180],
  ['text-embedding-ada-002', 1671217299],
].map(([id, created]) => ({ id, object: 'model', created, owned_by: id.startsWith('text-embedding-ada') ? 'openai-internal' : 'system' }));

// Newest first, as the real list is. (Creation dates of the 5.x models are approximate.)
const ANTHROPIC_MODELS = [
  ['claude-opus-5-5', 'Claude Opus 5.5', '2026-10-21T00:00:00Z'],
  ['claude-sonnet-5-5', 'Claude Sonnet 5.5', '2026-10-21T00:00:00Z'],
  ['claude-haiku-5-5', 'Claude Haiku 5.5', '2026-10-21T00:00:00Z'],
  ['claude-opus-4-5-20251101', 'Claude Opus 4.5', '2025-11-24T00:00:00Z'],
  ['claude-haiku-4-5-20251001', 'Claude Haiku 4.5', '2025-10-15T00:00:00Z'],
  ['claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5', '2025-09-29T00:00:00Z'],
  ['claude-opus-4-1-20250805', 'Claude Opus 4.1', '2025-08-05T00:00:00Z'],
  ['claude-opus-4-20250514', 'Claude Opus 4', '2025-05-22T00:00:00Z'],
  ['claude-sonnet-4-20250514', 'Claude Sonnet 4', '2025-05-22T00:00:00Z'],
  ['claude-3-7-sonnet-20250219', 'Claude Sonnet 3.7', '2025-02-24T00:00:00Z'],
  ['claude-3-5-haiku-20241022', 'Claude Haiku 3.5', '2024-10-22T00:00:00Z'],
].map(([id, display_name, created_at]) => ({ type: 'model', id, display_name, created_at }));

// ---------------------------------------------------------------------------
// Response helpers

function openaiHeaders(ctx, contentType) {
  return {
    'content-type': contentType,
    'x-request-id': ctx.rid,
    'openai-organization': 'mock-org',
    'openai-processing-ms': String(Math.max(1, Math.round(performance.now() - ctx.t0))),
    'openai-version': '2020-10-01',
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-requests': '9999',
    'x-ratelimit-reset-requests': '6ms',
    'x-ratelimit-limit-tokens': '30000000',
    'x-ratelimit-remaining-tokens': '29999000',
    'x-ratelimit-reset-tokens': '2ms',
  };
}

let resetSec = 0;
let resetStr = '';
function rateLimitReset() {
  const now = Math.floor(Date.now() / 1000);
  if (now !== resetSec) {
    resetSec = now;
    resetStr = new Date((now + 15) * 1000).toISOString().slice(0, 19) + 'Z';
  }
  return resetStr;
}

function anthropicHeaders(ctx, contentType) {
  return {
    'content-type': contentType,
    'request-id': ctx.rid,
    'anthropic-organization-id': ORG_ID,
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-requests-reset': rateLimitReset(),
  };
}

function baseHeaders(ctx, contentType) {
  return ctx.provider === 'anthropic' ? anthropicHeaders(ctx, contentType) : openaiHeaders(ctx, contentType);
}

/** 200 JSON answer honouring bad_json (truncated body, correct length) and, for
 *  non-stream requests, cut (full content-length announced, half the body sent, then
 *  the socket is closed). */
function sendResult(ctx, obj, dir) {
  let s = JSON.stringify(obj);
  if (dir.bad_json) s = s.slice(0, Math.floor(s.length / 2));
  if (dir.cut === undefined) return sendJSON(ctx, 200, s);
  const h = baseHeaders(ctx, 'application/json');
  h['content-length'] = Buffer.byteLength(s);
  ctx.status = 200;
  ctx.cut = true;
  ctx.res.writeHead(200, h);
  ctx.res.write(s.slice(0, s.length >> 1), () => {
    if (ctx.res.socket) ctx.res.socket.destroy();
  });
}

function sendJSON(ctx, status, obj, extra) {
  const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
  const h = baseHeaders(ctx, 'application/json');
  h['content-length'] = Buffer.byteLength(body);
  if (extra) Object.assign(h, extra);
  ctx.status = status;
  ctx.res.writeHead(status, h);
  ctx.res.end(body);
}

function openaiError(ctx, status, message, type = 'invalid_request_error', param = null, code = null, extra) {
  sendJSON(ctx, status, { error: { message, type, param, code } }, extra);
}

function anthropicError(ctx, status, type, message, extra) {
  sendJSON(ctx, status, { type: 'error', error: { type, message }, request_id: ctx.rid }, extra);
}

const ANTHROPIC_ERROR_TYPES = {
  400: ['invalid_request_error', 'Invalid request.'],
  401: ['authentication_error', 'invalid x-api-key'],
  402: ['billing_error', 'Your credit balance is too low to access the Anthropic API.'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'The requested resource could not be found.'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.'],
  500: ['api_error', 'Internal server error'],
  504: ['timeout_error', 'Request timed out'],
  529: ['overloaded_error', 'Overloaded'],
};

const OPENAI_ERRORS = {
  400: ['Invalid request (mock).', 'invalid_request_error', null],
  401: ['Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', 'invalid_api_key'],
  403: ['You are not allowed to sample from this model', 'invalid_request_error', null],
  404: ['The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found'],
  429: ['Rate limit reached for MODEL in organization org-mock on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits to learn more.', 'requests', 'rate_limit_exceeded'],
  500: ['The server had an error while processing your request. Sorry about that!', 'server_error', null],
  502: ['Bad gateway.', 'server_error', null],
  503: ['The server is overloaded or not ready yet.', 'server_error', null],
};

function directiveError(ctx, status, dir) {
  const extra = {};
  if (status === 429 || status === 503 || status === 529) {
    extra['retry-after'] = String(dir.retry_after !== undefined ? dir.retry_after : 1);
  }
  if (ctx.provider === 'anthropic') {
    if (status === 429 || status >= 500) extra['x-should-retry'] = 'true';
    const e = ANTHROPIC_ERROR_TYPES[status] || (status >= 500 ? ['api_error', 'Internal server error'] : ['invalid_request_error', 'Invalid request.']);
    anthropicError(ctx, status, e[0], e[1], extra);
  } else {
    const e = OPENAI_ERRORS[status] || (status >= 500 ? OPENAI_ERRORS[500] : OPENAI_ERRORS[400]);
    openaiError(ctx, status, e[0].replace('MODEL', ctx.model || 'gpt-4o'), e[1], null, e[2], extra);
  }
}

function notFound(ctx) {
  if (ctx.provider === 'anthropic') anthropicError(ctx, 404, 'not_found_error', 'Not Found');
  else openaiError(ctx, 404, `Invalid URL (${ctx.req.method} ${ctx.path})`);
}

// ---------------------------------------------------------------------------
// Auth

function checkOpenAIAuth(ctx) {
  const a = ctx.req.headers.authorization;
  if (typeof a === 'string' && /^Bearer\s+\S/i.test(a)) return true;
  openaiError(ctx, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.");
  return false;
}

// The real API takes the key as x-api-key or (API version 2026-10-21 SDKs) as
// Authorization: Bearer; when both are present x-api-key wins.
function checkAnthropicAuth(ctx) {
  const h = ctx.req.headers;
  const k = h['x-api-key'];
  const a = h.authorization;
  if (!(typeof k === 'string' && k.trim()) && !(typeof a === 'string' && /^Bearer\s+\S/i.test(a))) {
    anthropicError(ctx, 401, 'authentication_error', 'x-api-key header is required');
    return false;
  }
  const v = h['anthropic-version'];
  if (typeof v !== 'string' || !v.trim()) {
    // The real API answers a missing anthropic-version with 400, not 401.
    anthropicError(ctx, 400, 'invalid_request_error', 'anthropic-version: header is required');
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Streaming writer: a list of SSE frames, optionally dripped, cut or broken.

function streamOut(ctx, frames, opts) {
  const { res } = ctx;
  const { cutAfter, dir } = opts; // cutAfter: index in frames after which the socket is destroyed
  const drip = Math.max(0, num(dir.drip, 0));
  const firstByte = Math.max(0, num(dir.first_byte, 0));
  const h = baseHeaders(ctx, 'text/event-stream; charset=utf-8');
  h['cache-control'] = 'no-cache';
  ctx.status = 200;
  res.writeHead(200, h);
  const cut = cutAfter !== undefined && cutAfter !== null;
  const end = cut ? Math.min(cutAfter, frames.length) : frames.length;
  const finish = () => {
    if (cut) {
      ctx.cut = true;
      // Abrupt close: no terminating chunk, no [DONE]/message_stop.
      const s = res.socket;
      if (s) s.destroy();
      else res.destroy();
    } else {
      res.end();
    }
  };
  const writeAll = (from) => {
    let s = '';
    for (let i = from; i < end; i++) s += frames[i];
    if (!cut) return res.end(s);
    if (s) res.write(s, finish);
    else {
      res.flushHeaders();
      setTimeout(finish, 10);
    }
  };
  if (!drip && !firstByte) return writeAll(0);
  res.flushHeaders();
  let i = 0;
  let timer = null;
  let closed = false;
  res.on('close', () => {
    closed = true;
    if (timer) clearTimeout(timer);
  });
  const step = () => {
    timer = null;
    if (closed) return;
    if (!drip) return writeAll(i);
    if (i >= end) return finish();
    const f = frames[i++];
    if (i >= end) {
      if (cut) res.write(f, finish);
      else res.end(f);
      return;
    }
    res.write(f);
    timer = setTimeout(step, drip);
  };
  if (firstByte) timer = setTimeout(step, firstByte);
  else step();
}

// ---------------------------------------------------------------------------
// Endpoint: POST /v1/chat/completions

const OPENAI_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function validateChat(ctx) {
  const b = ctx.body;
  if (!b.model || typeof b.model !== 'string') {
    openaiError(ctx, 400, 'you must provide a model parameter');
    return false;
  }
  if (b.messages === undefined || b.messages === null) {
    openaiError(ctx, 400, "Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter');
    return false;
  }
  if (!Array.isArray(b.messages)) {
    openaiError(ctx, 400, `Invalid type for 'messages': expected an array of objects, but got ${typeName(b.messages)} instead.`, 'invalid_request_error', 'messages', 'invalid_type');
    return false;
  }
  if (!b.messages.length) {
    openaiError(ctx, 400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'invalid_request_error', 'messages', 'empty_array');
    return false;
  }
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i];
    if (!m || typeof m !== 'object' || Array.isArray(m)) {
      openaiError(ctx, 400, `Invalid type for 'messages[${i}]': expected an object, but got ${typeName(m)} instead.`, 'invalid_request_error', `messages[${i}]`, 'invalid_type');
      return false;
    }
    if (m.role === undefined) {
      openaiError(ctx, 400, `Missing required parameter: 'messages[${i}].role'.`, 'invalid_request_error', `messages[${i}].role`, 'missing_required_parameter');
      return false;
    }
    if (!OPENAI_ROLES.has(m.role)) {
      openaiError(ctx, 400, `Invalid value: '${m.role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`, 'invalid_request_error', `messages[${i}].role`, 'invalid_value');
      return false;
    }
  }
  if (b.stream_options != null && b.stream !== true) {
    openaiError(ctx, 400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'invalid_request_error', 'stream_options', null);
    return false;
  }
  return true;
}

function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal';
  if (typeof v === 'boolean') return 'a boolean';
  return 'an object';
}

function tokenLogprob(tok, dir) {
  if (dir.logprob !== undefined && Number.isFinite(Number(dir.logprob))) return Number(dir.logprob);
  return -((fnv1a(tok) % 2000) / 10000); // in (-0.2, 0]
}

function logprobEntry(tok, dir, k) {
  const lp = tokenLogprob(tok, dir);
  const bytes = Array.from(Buffer.from(tok, 'utf8'));
  const top = [];
  if (k > 0) {
    top.push({ token: tok, logprob: lp, bytes });
    const lead = tok.startsWith(' ') ? ' ' : '';
    for (let j = 1; j < k; j++) {
      const alt = lead + FILLER[(fnv1a(tok) + j) % FILLER.length] + (j > FILLER.length ? j : '');
      top.push({ token: alt, logprob: lp - 1.5 * j, bytes: Array.from(Buffer.from(alt, 'utf8')) });
    }
  }
  return { token: tok, logprob: lp, bytes, top_logprobs: top };
}

function handleChat(ctx) {
  if (!checkOpenAIAuth(ctx) || !requireJSON(ctx) || !validateChat(ctx)) return;
  const b = ctx.body;
  const dir = mergedDirectives(ctx.req.headers['x-mock'], lastUserText(b.messages, openaiMessageText));
  ctx.model = b.model;
  runDirectives(ctx, dir, () => {
    const plan = planChat(b, dir);
    if (b.stream === true) chatStream(ctx, b, dir, plan);
    else chatNonStream(ctx, b, dir, plan);
  });
}

function chatNonStream(ctx, b, dir, plan) {
  const id = 'chatcmpl-' + rnd(29);
  const wantLp = b.logprobs === true;
  const k = Math.max(0, Math.min(20, Math.floor(num(b.top_logprobs, 0))));
  const choices = [];
  for (let i = 0; i < plan.n; i++) {
    let message;
    let logprobs = null;
    if (plan.tool) {
      message = {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_' + rnd(24), type: 'function', function: { name: plan.tool.name, arguments: plan.tool.arguments } }],
        refusal: null,
        annotations: [],
      };
    } else if (plan.refusal) {
      message = { role: 'assistant', content: null, refusal: plan.refusal, annotations: [] };
    } else {
      message = { role: 'assistant', content: plan.text, refusal: null, annotations: [] };
      if (wantLp) logprobs = { content: plan.tokens.map((t) => logprobEntry(t, dir, k)), refusal: null };
    }
    choices.push({ index: i, message, logprobs, finish_reason: plan.finish });
  }
  const out = { id, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: b.model, choices };
  if (!dir.no_usage) out.usage = plan.usage;
  out.service_tier = 'default';
  out.system_fingerprint = FINGERPRINT;
  sendResult(ctx, out, dir);
}

function chatStream(ctx, b, dir, plan) {
  const id = 'chatcmpl-' + rnd(29);
  const created = Math.floor(Date.now() / 1000);
  const so = b.stream_options && typeof b.stream_options === 'object' ? b.stream_options : {};
  const includeUsage = so.include_usage === true && !dir.no_usage;
  const obfuscate = so.include_obfuscation !== false;
  const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(b.model)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}","choices":`;
  const usageNull = includeUsage ? ',"usage":null' : '';
  const tail = () => usageNull + (obfuscate ? `,"obfuscation":"${rnd(2 + rndInt(12))}"` : '') + '}\n\n';
  const frame = (choicesJson) => head + choicesJson + tail();
  const ch = (i, delta, logprobs, finish) =>
    `[{"index":${i},"delta":${delta},"logprobs":${logprobs},"finish_reason":${finish ? JSON.stringify(finish) : 'null'}}]`;
  const wantLp = b.logprobs === true;
  const k = Math.max(0, Math.min(20, Math.floor(num(b.top_logprobs, 0))));

  const frames = [];
  let contentFrames = 0;
  let cutAfter = null;
  const cutN = dir.cut !== undefined ? Math.max(0, Math.floor(num(dir.cut, 0))) : null;
  const errN = dir.stream_error !== undefined ? Math.max(0, Math.floor(num(dir.stream_error, 0))) : null;
  let errored = false;
  const content = (s) => {
    if (errored) return;
    if (dir.bad_json && contentFrames === 0) s = s.slice(0, Math.max(8, s.length >> 1)) + '\n\n';
    frames.push(s);
    contentFrames++;
    if (cutN !== null && cutAfter === null && contentFrames === cutN) cutAfter = frames.length;
    if (errN !== null && contentFrames === errN) streamErrorFrame();
  };
  const streamErrorFrame = () => {
    frames.push('data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}\n\n');
    errored = true;
  };

  if (plan.tool) {
    for (let c = 0; c < plan.n; c++) {
      const callId = 'call_' + rnd(24);
      const d = `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"${callId}","type":"function","function":{"name":${JSON.stringify(plan.tool.name)},"arguments":""}}],"refusal":null}`;
      frames.push(frame(ch(c, d, 'null', null)));
    }
    if (cutN === 0) cutAfter = frames.length;
    if (errN === 0) streamErrorFrame();
    const a = plan.tool.arguments;
    for (let off = 0; off < a.length; off += 8) {
      const frag = JSON.stringify(a.slice(off, off + 8));
      for (let c = 0; c < plan.n; c++) {
        content(frame(ch(c, `{"tool_calls":[{"index":0,"function":{"arguments":${frag}}}]}`, 'null', null)));
      }
    }
  } else if (plan.refusal) {
    for (let c = 0; c < plan.n; c++) frames.push(frame(ch(c, '{"role":"assistant","content":null,"refusal":""}', 'null', null)));
    if (cutN === 0) cutAfter = frames.length;
    if (errN === 0) streamErrorFrame();
    for (const t of plan.tokens) {
      for (let c = 0; c < plan.n; c++) content(frame(ch(c, `{"refusal":${JSON.stringify(t)}}`, 'null', null)));
    }
  } else {
    for (let c = 0; c < plan.n; c++) {
      frames.push(frame(ch(c, '{"role":"assistant","content":"","refusal":null}', wantLp ? '{"content":[],"refusal":null}' : 'null', null)));
    }
    if (cutN === 0) cutAfter = frames.length;
    if (errN === 0) streamErrorFrame();
    for (const t of plan.tokens) {
      const lp = wantLp ? `{"content":[${JSON.stringify(logprobEntry(t, dir, k))}],"refusal":null}` : 'null';
      const d = `{"content":${JSON.stringify(t)}}`;
      for (let c = 0; c < plan.n; c++) content(frame(ch(c, d, lp, null)));
    }
  }
  if (!errored) {
    for (let c = 0; c < plan.n; c++) frames.push(frame(ch(c, '{}', 'null', plan.finish)));
    if (includeUsage) {
      frames.push(head + '[],"usage":' + JSON.stringify(plan.usage) +
        (obfuscate ? `,"obfuscation":"${rnd(6)}"` : '') + '}\n\n');
    }
    frames.push('data: [DONE]\n\n');
  }
  streamOut(ctx, frames, { cutAfter, dir });
}

// ---------------------------------------------------------------------------
// Endpoint: POST /v1/embeddings

function handleEmbeddings(ctx) {
  if (!checkOpenAIAuth(ctx) || !requireJSON(ctx)) return;
  const b = ctx.body;
  if (!b.model || typeof b.model !== 'string') return openaiError(ctx, 400, 'you must provide a model parameter');
  if (b.input === undefined || b.input === null) return openaiError(ctx, 400, "'input' is a required property");
  const inputs = normalizeEmbeddingInput(b.input);
  const validInput = (typeof b.input === 'string' || Array.isArray(b.input)) && inputs.length > 0 &&
    inputs.every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((t) => Number.isInteger(t))));
  if (!validInput) {
    return openaiError(ctx, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error', null, null);
  }
  if (inputs.some((x) => x === '' || (Array.isArray(x) && x.length === 0))) {
    return openaiError(ctx, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error', null, null);
  }
  const fmt = b.encoding_format === undefined || b.encoding_format === null ? 'float' : b.encoding_format;
  if (fmt !== 'float' && fmt !== 'base64') {
    return openaiError(ctx, 400, `Invalid value: '${fmt}'. Value must be 'float' or 'base64'.`, 'invalid_request_error', 'encoding_format', 'invalid_value');
  }
  let dims = 8;
  if (b.dimensions !== undefined && b.dimensions !== null) {
    if (!Number.isInteger(b.dimensions) || b.dimensions < 1 || b.dimensions > 4096) {
      return openaiError(ctx, 400, `Invalid value for 'dimensions' = ${b.dimensions}. Must be an integer between 1 and 4096.`, 'invalid_request_error', 'dimensions', null);
    }
    dims = b.dimensions;
  }
  const dir = {};
  parseDirectiveHeader(ctx.req.headers['x-mock'], dir);
  for (const x of inputs) if (typeof x === 'string') parseDirectives(x, dir);
  ctx.model = b.model;
  runDirectives(ctx, dir, () => {
    const data = inputs.map((x, index) => {
      const v = mockEmbedding(x, dims);
      return { object: 'embedding', index, embedding: fmt === 'base64' ? f32ToBase64(v) : Array.from(v) };
    });
    const tokens = embeddingTokens(b.input);
    const out = { object: 'list', data, model: b.model };
    if (!dir.no_usage) out.usage = { prompt_tokens: tokens, total_tokens: tokens };
    sendResult(ctx, out, dir);
  });
}

// ---------------------------------------------------------------------------
// Endpoint: GET /v1/models[/id]

function handleModels(ctx, id) {
  if (ctx.provider === 'anthropic') {
    if (!checkAnthropicAuth(ctx)) return;
  } else if (!checkOpenAIAuth(ctx)) return;
  const dir = parseDirectiveHeader(ctx.req.headers['x-mock'], {});
  runDirectives(ctx, dir, () => {
    if (ctx.provider === 'anthropic') {
      if (id) {
        const m = ANTHROPIC_MODELS.find((x) => x.id === id);
        return m ? sendJSON(ctx, 200, m) : anthropicError(ctx, 404, 'not_found_error', `model: ${id}`);
      }
      const q = new URLSearchParams(ctx.query);
      const limit = Math.max(1, Math.min(1000, parseInt(q.get('limit') || '20', 10) || 20));
      let start = 0;
      let endIdx = ANTHROPIC_MODELS.length;
      const after = q.get('after_id');
      const before = q.get('before_id');
      if (after) start = ANTHROPIC_MODELS.findIndex((m) => m.id === after) + 1;
      let data;
      let hasMore;
      if (before && !after) {
        endIdx = Math.max(0, ANTHROPIC_MODELS.findIndex((m) => m.id === before));
        const s = Math.max(0, endIdx - limit);
        data = ANTHROPIC_MODELS.slice(s, endIdx);
        hasMore = s > 0;
      } else {
        data = ANTHROPIC_MODELS.slice(start, start + limit);
        hasMore = start + limit < ANTHROPIC_MODELS.length;
      }
      return sendJSON(ctx, 200, {
        data,
        has_more: hasMore,
        first_id: data.length ? data[0].id : null,
        last_id: data.length ? data[data.length - 1].id : null,
      });
    }
    if (id) {
      const m = OPENAI_MODELS.find((x) => x.id === id);
      return m ? sendJSON(ctx, 200, m)
        : openaiError(ctx, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    }
    sendJSON(ctx, 200, { object: 'list', data: OPENAI_MODELS });
  });
}

// ---------------------------------------------------------------------------
// Endpoint: POST /v1/messages, /v1/messages/count_tokens

function validateMessages(ctx, needMaxTokens) {
  const b = ctx.body;
  const bad = (msg) => {
    anthropicError(ctx, 400, 'invalid_request_error', msg);
    return false;
  };
  if (b.model === undefined || b.model === null) return bad('model: Field required');
  if (typeof b.model !== 'string' || !b.model) return bad('model: Input should be a valid string');
  if (needMaxTokens) {
    if (b.max_tokens === undefined || b.max_tokens === null) return bad('max_tokens: Field required');
    if (!Number.isInteger(b.max_tokens)) return bad('max_tokens: Input should be a valid integer');
    if (b.max_tokens < 1) return bad('max_tokens: Input should be greater than or equal to 1');
  }
  if (b.messages === undefined || b.messages === null) return bad('messages: Field required');
  if (!Array.isArray(b.messages)) return bad('messages: Input should be a valid list');
  if (!b.messages.length) return bad('messages: at least one message is required');
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i];
    if (!m || typeof m !== 'object') return bad(`messages.${i}: Input should be a valid dictionary or object to extract fields from`);
    if (m.role === 'system') {
      return bad('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (m.role !== 'user' && m.role !== 'assistant') return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (m.content === undefined || m.content === null) return bad(`messages.${i}.content: Field required`);
  }
  // API version 2026-10-21 removed the sampling parameters and rejects document blocks in
  // assistant messages and citations on user text blocks.
  const ver = ctx.req.headers['anthropic-version'];
  if (typeof ver === 'string' && ver.trim() >= '2026-10-21') {
    for (const k of ['temperature', 'top_p', 'top_k']) {
      if (b[k] !== undefined) return bad(`${k}: Extra inputs are not permitted`);
    }
    for (let i = 0; i < b.messages.length; i++) {
      const c = b.messages[i].content;
      if (!Array.isArray(c)) continue;
      for (let j = 0; j < c.length; j++) {
        const blk = c[j];
        if (!blk || typeof blk !== 'object') continue;
        if (b.messages[i].role === 'assistant' && blk.type === 'document') {
          return bad(`messages.${i}.content.${j}: document blocks are not permitted in assistant messages`);
        }
        if (b.messages[i].role === 'user' && blk.type === 'text' && Array.isArray(blk.citations) && blk.citations.length) {
          return bad(`messages.${i}.content.${j}.citations: citations are not permitted on text blocks in user messages`);
        }
      }
    }
  }
  const th = b.thinking;
  if (needMaxTokens && th && th.type === 'enabled' && Number.isInteger(th.budget_tokens)) {
    if (th.budget_tokens < 1024) return bad('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (b.max_tokens <= th.budget_tokens) {
      return bad('`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size');
    }
  }
  return true;
}

function handleCountTokens(ctx) {
  if (!checkAnthropicAuth(ctx) || !requireJSON(ctx) || !validateMessages(ctx, false)) return;
  const dir = parseDirectiveHeader(ctx.req.headers['x-mock'], {});
  ctx.model = ctx.body.model;
  runDirectives(ctx, dir, () => sendJSON(ctx, 200, { input_tokens: anthropicInputTokens(ctx.body) }));
}

function handleMessages(ctx) {
  if (!checkAnthropicAuth(ctx) || !requireJSON(ctx) || !validateMessages(ctx, true)) return;
  const b = ctx.body;
  const dir = mergedDirectives(ctx.req.headers['x-mock'], lastUserText(b.messages, anthropicMessageText));
  ctx.model = b.model;
  runDirectives(ctx, dir, () => {
    const plan = planMessages(b, dir);
    if (b.stream === true) messagesStream(ctx, b, dir, plan);
    else messagesNonStream(ctx, b, dir, plan);
  });
}

function messagesNonStream(ctx, b, dir, plan) {
  const content = [];
  if (plan.thinking) content.push({ type: 'thinking', thinking: plan.thinking.text, signature: plan.thinking.signature });
  if (plan.tool) content.push({ type: 'tool_use', id: 'toolu_01' + rnd(22, B58), name: plan.tool.name, input: plan.tool.input });
  else content.push({ type: 'text', text: plan.text });
  const out = {
    id: 'msg_01' + rnd(22, B58),
    type: 'message',
    role: 'assistant',
    model: b.model,
    content,
    stop_reason: plan.stopReason,
    stop_sequence: plan.stopSequence,
  };
  if (!dir.no_usage) out.usage = plan.usage;
  sendResult(ctx, out, dir);
}

function messagesStream(ctx, b, dir, plan) {
  const ev = (name, data) => `event: ${name}\ndata: ${data}\n\n`;
  const frames = [];
  const u = plan.usage;
  const startMsg = {
    id: 'msg_01' + rnd(22, B58),
    type: 'message',
    role: 'assistant',
    model: b.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
  };
  if (!dir.no_usage) {
    startMsg.usage = {
      input_tokens: u.input_tokens,
      cache_creation_input_tokens: u.cache_creation_input_tokens,
      cache_read_input_tokens: u.cache_read_input_tokens,
      cache_creation: u.cache_creation,
      output_tokens: 1,
      service_tier: 'standard',
    };
  }
  frames.push(ev('message_start', JSON.stringify({ type: 'message_start', message: startMsg })));
  let cutAfter = null;
  let contentFrames = 0;
  const cutN = dir.cut !== undefined ? Math.max(0, Math.floor(num(dir.cut, 0))) : null;
  const errN = dir.stream_error !== undefined ? Math.max(0, Math.floor(num(dir.stream_error, 0))) : null;
  let errored = false;
  let pinged = false;
  const errFrame = () => {
    frames.push(ev('error', JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: ctx.rid })));
    errored = true;
  };
  const blockStart = (index, block) => {
    if (errored) return;
    frames.push(ev('content_block_start', `{"type":"content_block_start","index":${index},"content_block":${JSON.stringify(block)}}`));
    if (!pinged) {
      frames.push(ev('ping', '{"type": "ping"}'));
      pinged = true;
      if (cutN === 0) cutAfter = frames.length;
      if (errN === 0) errFrame();
    }
  };
  const delta = (index, d) => {
    if (errored) return;
    let data = `{"type":"content_block_delta","index":${index},"delta":${JSON.stringify(d)}}`;
    if (dir.bad_json && contentFrames === 0) data = data.slice(0, data.length >> 1);
    frames.push(ev('content_block_delta', data));
    contentFrames++;
    if (cutN !== null && cutAfter === null && contentFrames === cutN) cutAfter = frames.length;
    if (errN !== null && contentFrames === errN) errFrame();
  };
  const blockStop = (index) => {
    if (!errored) frames.push(ev('content_block_stop', `{"type":"content_block_stop","index":${index}}`));
  };
  let idx = 0;
  if (plan.thinking) {
    blockStart(idx, { type: 'thinking', thinking: '', signature: '' });
    for (const t of plan.thinking.tokens) delta(idx, { type: 'thinking_delta', thinking: t });
    if (!errored) frames.push(ev('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: idx, delta: { type: 'signature_delta', signature: plan.thinking.signature } })));
    blockStop(idx);
    idx++;
  }
  if (plan.tool) {
    blockStart(idx, { type: 'tool_use', id: 'toolu_01' + rnd(22, B58), name: plan.tool.name, input: {} });
    delta(idx, { type: 'input_json_delta', partial_json: '' });
    const j = plan.tool.json;
    for (let off = 0; off < j.length; off += 8) delta(idx, { type: 'input_json_delta', partial_json: j.slice(off, off + 8) });
    blockStop(idx);
  } else {
    blockStart(idx, { type: 'text', text: '' });
    for (const t of plan.tokens) delta(idx, { type: 'text_delta', text: t });
    blockStop(idx);
  }
  if (!errored) {
    const md = { type: 'message_delta', delta: { stop_reason: plan.stopReason, stop_sequence: plan.stopSequence } };
    if (!dir.no_usage) {
      md.usage = dir.delta_usage === 'full'
        ? {
          input_tokens: u.input_tokens,
          cache_creation_input_tokens: u.cache_creation_input_tokens,
          cache_read_input_tokens: u.cache_read_input_tokens,
          output_tokens: u.output_tokens,
        }
        : { output_tokens: u.output_tokens };
    }
    frames.push(ev('message_delta', JSON.stringify(md)));
    frames.push(ev('message_stop', '{"type":"message_stop"}'));
  }
  streamOut(ctx, frames, { cutAfter, dir });
}

// ---------------------------------------------------------------------------
// Shared request plumbing

function requireJSON(ctx) {
  if (ctx.body && typeof ctx.body === 'object' && !Array.isArray(ctx.body)) return true;
  if (ctx.provider === 'anthropic') {
    anthropicError(ctx, 400, 'invalid_request_error', ctx.rawLen ? 'There was an error parsing the body. Please make sure it is valid JSON.' : 'messages: Field required');
  } else {
    openaiError(ctx, 400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)");
  }
  return false;
}

/** Holds: a request with hold=NAME waits until NAME is released
 *  (POST /__mock/release or mock.release(NAME)); once released, NAME passes at once. */
function holdUntilReleased(state, name, go) {
  const h = state.holds;
  if (h.released.has(name)) return go();
  if (!h.waiting.has(name)) h.waiting.set(name, []);
  h.waiting.get(name).push(go);
}

function releaseHold(state, name) {
  const h = state.holds;
  h.released.add(name);
  const list = h.waiting.get(name) || [];
  h.waiting.delete(name);
  for (const go of list) go();
  return list.length;
}

function heldCounts(state) {
  const out = {};
  for (const [k, v] of state.holds.waiting) out[k] = v.length;
  return out;
}

/** Apply hold / delay / drop / status directives, then call `go`. */
function runDirectives(ctx, dir, go) {
  if (dir.hold !== undefined && ctx.state) {
    const name = String(dir.hold);
    const rest = { ...dir };
    delete rest.hold;
    return holdUntilReleased(ctx.state, name, () => runDirectives(ctx, rest, go));
  }
  const delay = Math.max(0, num(dir.delay, 0));
  const act = () => {
    if (ctx.closed) return;
    if (dir.drop) {
      ctx.status = 0;
      const s = ctx.res.socket;
      if (s) s.destroy();
      return;
    }
    const st = Math.floor(num(dir.status, 0));
    if (st >= 400 && st <= 599) return directiveError(ctx, st, dir);
    go();
  };
  if (delay > 0) setTimeout(act, delay);
  else act();
}

function guessProvider(pathname, headers) {
  if (pathname.startsWith('/v1/messages') || pathname.startsWith('/v1/complete')) return 'anthropic';
  if (pathname.startsWith('/v1/models')) {
    if (headers['anthropic-version'] !== undefined) return 'anthropic';
    if (headers['x-api-key'] !== undefined && headers.authorization === undefined) return 'anthropic';
  }
  return 'openai';
}

function route(ctx) {
  const { req, path: p } = ctx;
  const m = req.method;
  if (p === '/v1/chat/completions' && m === 'POST') return handleChat(ctx);
  if (p === '/v1/messages' && m === 'POST') return handleMessages(ctx);
  if (p === '/v1/embeddings' && m === 'POST') return handleEmbeddings(ctx);
  if (p === '/v1/messages/count_tokens' && m === 'POST') return handleCountTokens(ctx);
  if (m === 'GET' && (p === '/v1/models' || p === '/v1/models/')) return handleModels(ctx, null);
  if (m === 'GET' && p.startsWith('/v1/models/')) return handleModels(ctx, decodeURIComponent(p.slice(11)));
  notFound(ctx);
}

function control(state, req, res, p, raw) {
  const json = (status, obj) => {
    const s = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  };
  if (p === '/__mock/requests' && req.method === 'GET') return json(200, state.requests);
  if (p === '/__mock/reset' && req.method === 'POST') {
    state.requests.length = 0;
    state.holds.released.clear();
    return json(200, { ok: true });
  }
  if (p === '/__mock/release' && req.method === 'POST') {
    let name = null;
    try {
      name = raw && raw.length ? JSON.parse(raw.toString('utf8')).name : null;
    } catch {
      name = null;
    }
    if (name === null || name === undefined) return json(400, { error: 'body must be {"name": "..."}' });
    return json(200, { ok: true, released: releaseHold(state, String(name)) });
  }
  if (p === '/__mock/held' && req.method === 'GET') return json(200, heldCounts(state));
  if (p === '/__mock/connections' && req.method === 'GET') {
    return json(200, { opened: state.conns.opened, open: state.conns.open.size });
  }
  if (p === '/__mock/health' && req.method === 'GET') return json(200, { ok: true, requests: state.requests.length });
  json(404, { error: 'unknown mock control endpoint' });
}

const CONN_ID = Symbol('mockConnId');

function createHandler(state) {
  return (req, res) => {
    const url = req.url || '/';
    const qi = url.indexOf('?');
    const p = qi < 0 ? url : url.slice(0, qi);
    const query = qi < 0 ? '' : url.slice(qi + 1);
    const t0 = performance.now();
    let chunks = null;
    let first = null;
    req.on('data', (c) => {
      if (first === null) first = c;
      else (chunks || (chunks = [first])).push(c);
    });
    req.on('end', () => {
      const raw = chunks ? Buffer.concat(chunks) : first;
      if (p.startsWith('/__mock/')) return control(state, req, res, p, raw);
      let body = null;
      if (raw && raw.length) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          body = null;
        }
      }
      if (state.record) {
        const r = state.requests;
        // Over the limit: drop the oldest half at once (amortised O(1) per request).
        if (r.length >= state.recordLimit) r.splice(0, Math.max(1, r.length - (state.recordLimit >> 1)));
        r.push({ method: req.method, path: p, query, headers: req.headers, body, time: Date.now(), conn: req.socket[CONN_ID] });
      }
      const provider = guessProvider(p, req.headers);
      const ctx = {
        req, res, path: p, query, body, rawLen: raw ? raw.length : 0, provider, t0, state,
        rid: provider === 'anthropic' ? 'req_011C' + rnd(20, B58) : 'req_' + rnd(32, HEX),
        status: 0, model: null, closed: false, cut: false,
      };
      res.on('close', () => {
        ctx.closed = true;
        if (state.log) {
          state.log.write(JSON.stringify({
            t: new Date().toISOString(), method: req.method, path: p, status: ctx.status, model: ctx.model,
            stream: !!(body && body.stream), ms: Math.round((performance.now() - t0) * 100) / 100,
            ...(ctx.cut ? { cut: true } : {}),
          }) + '\n');
        }
      });
      try {
        route(ctx);
      } catch (e) {
        if (!res.headersSent) {
          if (provider === 'anthropic') anthropicError(ctx, 500, 'api_error', 'Internal server error (mock bug: ' + e.message + ')');
          else openaiError(ctx, 500, 'mock bug: ' + e.message, 'server_error');
        } else res.destroy();
      }
    });
  };
}

// ---------------------------------------------------------------------------
// Public API

/**
 * Start the mock in-process.
 * @param {{port?: number, host?: string, log?: string, record?: boolean, recordLimit?: number, tls?: {key: string|Buffer, cert: string|Buffer}}} opts
 * @returns {Promise<{port: number, host: string, url: string, requests: object[], reset(): void, close(): Promise<void>, server: http.Server}>}
 */
export function startMock({ port = 0, host = '127.0.0.1', log = null, record = true, recordLimit = 10000,
  tls = null } = {}) {
  const state = {
    requests: [],
    record,
    recordLimit: Math.max(1, recordLimit),
    log: log ? fs.createWriteStream(log, { flags: 'a' }) : null,
    holds: { released: new Set(), waiting: new Map() },
    conns: { opened: 0, open: new Set() }, // connections accepted (TLS: handshakes done)
  };
  // tls: { key, cert } (PEM) serves HTTPS instead of HTTP.
  const server = tls
    ? https.createServer({ key: tls.key, cert: tls.cert, keepAlive: true, noDelay: true }, createHandler(state))
    : http.createServer({ keepAlive: true, noDelay: true }, createHandler(state));
  server.on(tls ? 'secureConnection' : 'connection', (sock) => {
    sock[CONN_ID] = ++state.conns.opened;
    state.conns.open.add(sock);
    sock.on('close', () => state.conns.open.delete(sock));
  });
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = server.address().port;
      resolve({
        port: actual,
        host,
        url: `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actual}`,
        requests: state.requests,
        server,
        reset() {
          state.requests.length = 0;
          state.holds.released.clear();
        },
        /** Releases hold=NAME (and every later request holding on it); returns how many waited. */
        release(name) {
          return releaseHold(state, String(name));
        },
        /** Requests waiting per hold name. */
        held() {
          return heldCounts(state);
        },
        /** Connections: opened since start (TLS: completed handshakes), open now. */
        connections() {
          return { opened: state.conns.opened, open: state.conns.open.size };
        },
        close() {
          return new Promise((res) => {
            server.close(() => {
              if (state.log) state.log.end(res);
              else res();
            });
            server.closeAllConnections();
          });
        },
      });
    });
  });
}

function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1', log: null, record: true, recordLimit: 10000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    const name = a.split('=')[0];
    if (name === '--port') o.port = parseInt(val(), 10);
    else if (name === '--host') o.host = val();
    else if (name === '--log') o.log = val();
    else if (name === '--no-record') o.record = false;
    else if (name === '--record-limit') o.recordLimit = parseInt(val(), 10);
    else if (name === '--help' || name === '-h') {
      process.stdout.write('usage: node tests/mock/provider.mjs --port 0 [--host 127.0.0.1] [--log FILE] [--no-record] [--record-limit N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('bad --port');
  return o;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mock provider: ${e.message}\n`);
    process.exit(2);
  }
  const mock = await startMock(opts);
  process.stdout.write(`MOCK_LISTENING ${mock.port}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    mock.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const isMain = (() => {
  try {
    return !!process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (isMain) {
  main().catch((e) => {
    process.stderr.write(`mock provider: ${e.stack || e}\n`);
    process.exit(1);
  });
}

export default startMock;
