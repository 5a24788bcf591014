-- The login flood: login.lua, with each connection pausing the second script
-- argument's milliseconds between requests, so that many connections offer
-- a set rate (a multiple of the hash rate) instead of spinning on quick
-- refusals and stealing the cores from the server.
--   wrk ... -s flood.lua URL -- '{"email":…}' 580
dofile(os.getenv("BENCH_LUA") .. "/login.lua")

local login_init = init
local pause_ms = 0

function init(args)
   login_init(args)
   pause_ms = tonumber(args[2]) or pause_ms
end

function delay()
   return pause_ms
end
