-- wrk script for bench/run.sh: POSTs one OpenAI chat body with the gateway
-- key; BENCH_STREAM=1 asks for an SSE stream with usage. done() prints one
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
