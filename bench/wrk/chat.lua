-- wrk script: chat completion POSTs that rotate API keys over the bench
-- consumers, and a count of every response status.
-- Environment (set by bench.run from bench.workload, the one definition of the
-- load): BENCH_CONSUMERS (how many keys), BENCH_KEY_FORMAT (a key from its
-- index), BENCH_BODY (the JSON request). At the end one line is printed:
--   BENCH_RESULT {json}
-- with completed requests, wrk's socket errors and the count of each status.

local consumers = tonumber(os.getenv("BENCH_CONSUMERS"))
local key_format = os.getenv("BENCH_KEY_FORMAT")
local payload = os.getenv("BENCH_BODY")
local threads = {}

-- Per thread (each thread runs its own copy of this script).
local requests = {}
local next_index = 0
counts = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  for i = 0, consumers - 1 do
    local headers = {
      ["Authorization"] = "Bearer " .. string.format(key_format, i),
      ["Content-Type"] = "application/json",
    }
    requests[i + 1] = wrk.format("POST", "/v1/chat/completions", headers, payload)
  end
  -- Threads start at different keys so that together they spread evenly.
  next_index = (thread_index * 397) % consumers
end

function request()
  next_index = next_index % consumers + 1
  return requests[next_index]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"status":{%s},'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
