-- Requests for wrk, described by environment variables that bench/run.py sets.
--
-- BENCH_METHOD, BENCH_PATH, BENCH_BODY and BENCH_HEADERS ("Name: value" lines)
-- are templates: {1}, {2}, ... become the tab-separated fields of the next line
-- of BENCH_LINES (cycled, from line BENCH_START + 1), {n} a request counter.
-- With BENCH_ONCE=1 each line is used once and the thread stops when they run
-- out (single-use refresh tokens, sessions to delete). done() prints the
-- summary as one JSON line, with the share of requests slower than
-- BENCH_SLOW_US microseconds (100 ms unless set).

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local header_template = os.getenv("BENCH_HEADERS") or ""
local lines_file = os.getenv("BENCH_LINES")
local once = os.getenv("BENCH_ONCE") == "1"
local slow_us = tonumber(os.getenv("BENCH_SLOW_US") or "100000")

local start = tonumber(os.getenv("BENCH_START") or "0")
local lines, count, n = {}, 0, 0

function init(args)
  if lines_file then
    local skipped = 0
    for line in io.lines(lines_file) do
      skipped = skipped + 1
      if skipped > start then
        count = count + 1
        local fields = {}
        for field in string.gmatch(line, "[^\t]+") do fields[#fields + 1] = field end
        lines[count] = fields
      end
    end
  end
end

local function fill(template, fields)
  if not template then return nil end
  template = string.gsub(template, "{n}", tostring(n))
  return (string.gsub(template, "{(%d+)}", function(i) return fields[tonumber(i)] end))
end

function request()
  local fields = {}
  if count > 0 then
    if once and n >= count then
      wrk.thread:stop()
      n = count - 1  -- one last (repeated) request while the thread winds down
    end
    fields = lines[n % count + 1]
  end
  n = n + 1
  local headers = {}
  for name, value in string.gmatch(fill(header_template, fields), "([^:\n]+):%s*([^\n]*)") do
    headers[name] = value
  end
  return wrk.format(method, fill(path, fields), headers, fill(body, fields))
end

-- The share of requests slower than slow_us: the smallest percentile above it,
-- found by bisection (wrk's statistics give percentiles, not counts).
local function slow_share(latency)
  if latency.max <= slow_us then return 0 end
  local low, high = 0, 100
  for _ = 1, 40 do
    local mid = (low + high) / 2
    if latency:percentile(mid) > slow_us then high = mid else low = mid end
  end
  return (100 - high) / 100
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
    '"max_us": %d, "slow_share": %.6f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, slow_share(latency), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
