-- wrk script for bench/semantic/run.sh: one OpenAI chat request per line of
-- BENCH_QUERIES (JSON string literals, 20-word questions), starting at line
-- BENCH_OFFSET + 1 (at most 200,000 lines, then it wraps), so that every
-- request of a run is a different question
-- (an exact-cache miss; on the semantic gateway a semantic lookup and then
-- an indexed store). done() prints one machine-readable line (microseconds).
local key = os.getenv("BENCH_KEY") or "cg-bench-key"
local file = os.getenv("BENCH_QUERIES")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0") or 0
local queries = {}
local i = 0
for line in io.lines(file) do
  i = i + 1
  if i > offset then queries[#queries + 1] = line end
  if #queries >= 200000 then break end
end
local n = 0
local head = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},' ..
  '{"role":"user","content":'
local tail = '}],"max_tokens":32}'

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

function request()
  n = n + 1
  local q = queries[((n - 1) % #queries) + 1]
  return wrk.format(nil, "/v1/chat/completions", nil, head .. q .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d mean_us=%.1f " ..
    "max_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
