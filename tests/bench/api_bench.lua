-- wrk script of the api benchmark: the Authorization header from BENCH_TOKEN, and
-- with BENCH_DELAY_MS set, one request per connection every BENCH_DELAY_MS ms on
-- average (the paced run at half the peak rate; wrk's latency then excludes the
-- pause). The pause is drawn uniformly from [0, 2 x BENCH_DELAY_MS]: with a fixed one
-- every connection fires in the same instant, tick after tick, and the run measures
-- that synchronised burst queueing up rather than a steady rate of independent
-- clients.
local token = os.getenv("BENCH_TOKEN")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
wrk.headers["Authorization"] = "Bearer " .. token
if delay_ms > 0 then
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  function delay()
    return math.floor(math.random() * 2 * delay_ms + 0.5)
  end
end
function done(summary, latency, requests)
  io.write(string.format("BENCH_JSON {\"requests\":%d,\"errors\":%d,\"non2xx\":%d,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
