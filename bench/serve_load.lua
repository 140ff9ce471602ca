-- wrk script for bench/serve_load.sh: every request adds one event to a random session
-- and asks for its top-K (POST /v1/events). Items are drawn from ITEMS_FILE (one id per
-- line: the test events, so popular items come up as often as in the data). With
-- DELAY_MS > 0 each connection waits that long before each request, which caps the rate
-- at connections * 1000 / DELAY_MS requests/s (wrk has no constant-rate mode).
-- done() prints one line "WRKJSON {...}" with throughput and latency percentiles.
local sessions = tonumber(os.getenv("SESSIONS") or "10000")
local k = os.getenv("K") or "20"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local items = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  local f = assert(io.open(os.getenv("ITEMS_FILE"), "r"))
  for line in f:lines() do
    if line ~= "" then items[#items + 1] = line end
  end
  f:close()
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local headers = {["Content-Type"] = "application/json"}

function request()
  local s = math.random(sessions)
  local it = items[math.random(#items)]
  local body = '{"session_id":"s' .. s .. '","items":["' .. it .. '"],"k":' .. k .. '}'
  return wrk.format("POST", "/v1/events", headers, body)
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"latency_ms":{"p50":%.3f,' ..
    '"p90":%.3f,"p99":%.3f,"p99.9":%.3f,"mean":%.3f,"max":%.3f},"errors":{"connect":%d,' ..
    '"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.mean / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
