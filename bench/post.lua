-- wrk script for bench/run.sh: POSTs one OpenAI chat body with the gateway
-- key; BENCH_STREAM=1 asks for an SSE stream with usage; BENCH_UNIQUE and
-- BENCH_NO_STORE are for the cache scenarios (below). done() prints one
-- machine-readable line (latencies in microseconds).
local key = os.getenv("BENCH_KEY") or "cg-bench-key"
local stream = os.getenv("BENCH_STREAM") == "1"
-- BENCH_PROMPT_BYTES: pad the user message to about this many bytes (real
-- prompts are often KBs; the default body is ~190 bytes)
local pad = tonumber(os.getenv("BENCH_PROMPT_BYTES") or "0") or 0
local content = "Say hello in one short sentence please."
if pad > #content then
  content = content .. string.rep(" lorem ipsum dolor sit amet", math.floor((pad - #content) / 27))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
if stream then
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},' ..
    '{"role":"user","content":"' .. content .. '"}],"max_tokens":32,' ..
    '"stream":true,"stream_options":{"include_usage":true}}'
else
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},' ..
    '{"role":"user","content":"' .. content .. '"}],"max_tokens":32}'
end

-- BENCH_UNIQUE=1: every request's user message ends with a distinct id (a
-- random per-run prefix and a counter), so no two bodies repeat: with the
-- exact cache on, every request is a miss that is stored. BENCH_NO_STORE=1
-- sends "Cache-Control: no-store" (the cache is bypassed).
if os.getenv("BENCH_NO_STORE") == "1" then
  wrk.headers["Cache-Control"] = "no-store"
end
if os.getenv("BENCH_UNIQUE") == "1" then
  local f = io.open("/dev/urandom", "rb")
  local run = f and f:read(6) or tostring(os.time())
  if f then f:close() end
  run = run:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  local head, tail = wrk.body:match('^(.*' .. content:gsub("%p", "%%%0") .. ')(.*)$')
  local n = 0
  function request()
    n = n + 1
    return wrk.format(nil, nil, nil, head .. " #" .. run .. "-" .. n .. tail)
  end
end

-- BENCH_PROMPTS=FILE: one JSON string literal per line (a prompt, already
-- escaped); request n sends line n (cycling) as the user message, so the
-- bodies are real prompts of real lengths (bench/run.sh's tiering-real
-- cell: Arena-Hard's 1,250 prompts).
local prompts_file = os.getenv("BENCH_PROMPTS")
if prompts_file and prompts_file ~= "" then
  local lines = {}
  for line in io.lines(prompts_file) do lines[#lines + 1] = line end
  local pre = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},' ..
    '{"role":"user","content":'
  local post = '}],"max_tokens":32' ..
    (stream and ',"stream":true,"stream_options":{"include_usage":true}' or '') .. '}'
  local n = math.random(#lines) - 1
  function request()
    n = n + 1
    return wrk.format(nil, nil, nil, pre .. lines[n % #lines + 1] .. post)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "mean_us=%.1f max_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
