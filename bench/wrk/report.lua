-- report.lua: print one machine-readable JSON line when the run ends.
--   wrk -t1 -c64 -d10s --latency -s report.lua http://127.0.0.1:8080/json
-- Combine with another script by concatenation (each defines other hooks):
--   cat pipeline.lua report.lua > /tmp/run.lua
-- Latencies are in microseconds; errors.status counts responses >= 400.

-- wrk 4's coordinated-omission correction can add samples below the
-- recorded minimum, which latency:percentile never counts; a high percentile
-- then comes back as 0. The maximum is an upper bound for it, so report that.
local function pct(latency, p)
  local v = latency:percentile(p)
  if v == 0 then
    return latency.max
  end
  return v
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    pct(latency, 50), pct(latency, 75), pct(latency, 90),
    pct(latency, 99), pct(latency, 99.9)))
end
