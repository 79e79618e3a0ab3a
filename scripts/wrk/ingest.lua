-- POSTs the bodies of a file (one JSON body a line) in turn, over wrk's keep-alive
-- connections, counting responses by status; done() prints the run's figures as one line
-- of JSON after the marker "WRK_JSON ", for scripts/wrk_runner.py to parse.
--
--   wrk -t2 -c16 -d4s -s scripts/wrk/ingest.lua URL -- BODIES_FILE API_KEY [bearer]
--
-- With "bearer" the key (or a JWT) goes in Authorization: Bearer, else in X-API-Key.

local threads = {}

function setup(thread)
   -- Each thread starts at its own body, so the names a load covers are spread at once.
   thread:set("position", #threads)
   table.insert(threads, thread)
end

function init(args)
   local headers = { ["X-API-Key"] = args[2], ["Content-Type"] = "application/json" }
   if args[3] == "bearer" then
      headers = { ["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json" }
   end
   prepared = {}
   for body in io.lines(args[1]) do
      prepared[#prepared + 1] = wrk.format("POST", wrk.path, headers, body)
   end
   statuses = {}
end

function request()
   position = position % #prepared + 1
   return prepared[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function status_counts()
   local merged, non_2xx = {}, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + count
         if status < 200 or status > 299 then
            non_2xx = non_2xx + count
         end
      end
   end
   local fields = {}
   for status, count in pairs(merged) do
      fields[#fields + 1] = string.format('"%d": %d', status, count)
   end
   return "{" .. table.concat(fields, ", ") .. "}", non_2xx
end

function done(summary, latency, requests)
   local statuses_json, non_2xx = status_counts()
   local errors = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "statuses": %s, ' ..
      '"non_2xx": %d, "socket_errors": {"connect": %d, "read": %d, "write": %d, ' ..
      '"timeout": %d}, "latency_us": {"p50": %d, "p95": %d, "p99": %d, "max": %d, ' ..
      '"mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes, statuses_json, non_2xx,
      errors.connect, errors.read, errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99),
      latency.max, latency.mean))
end
