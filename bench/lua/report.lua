-- Shared by every scenario script (loaded with dofile). When wrk finishes,
-- prints one line, `BENCH_RESULT {json}`, that bench/run reads: totals,
-- socket errors, latency percentiles (microseconds) and, when the script
-- counts them, the HTTP status codes seen.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Counts status codes into the per-thread global `statuses`; a script
-- that wants the counts calls this from its `response` hook. (Scripts
-- without a `response` hook keep wrk on its fast path.)
statuses = {}
function count_status(status)
   statuses[status] = (statuses[status] or 0) + 1
end

local function encode(value)
   local kind = type(value)
   if kind == "table" then
      local parts = {}
      for k, v in pairs(value) do
         table.insert(parts, '"' .. tostring(k) .. '":' .. encode(v))
      end
      return "{" .. table.concat(parts, ",") .. "}"
   elseif kind == "number" then
      if value ~= value or value == math.huge or value == -math.huge then
         return "null"
      end
      return string.format("%.17g", value)
   elseif kind == "boolean" then
      return tostring(value)
   elseif value == nil then
      return "null"
   end
   return string.format("%q", tostring(value))
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, n in pairs(counts) do
         merged[status] = (merged[status] or 0) + n
      end
   end
   local percentiles = {}
   for _, p in ipairs({50, 90, 99, 99.9}) do
      percentiles[tostring(p)] = latency:percentile(p)
   end
   io.write("BENCH_RESULT " .. encode({
      duration_us = summary.duration,
      requests = summary.requests,
      bytes = summary.bytes,
      errors = summary.errors,
      latency_us = {
         min = latency.min, max = latency.max, mean = latency.mean,
         stdev = latency.stdev, percentiles = percentiles,
      },
      statuses = merged,
   }) .. "\n")
end
