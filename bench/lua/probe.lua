-- A light GET probe for latency under load: each connection waits the
-- first script argument's milliseconds (default 5) between requests, so the
-- probe measures the server rather than adding to the load.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")

local pause_ms = 5

function init(args)
   pause_ms = tonumber(args[1]) or pause_ms
end

function delay()
   return pause_ms
end

function response(status, headers, body)
   count_status(status)
end
