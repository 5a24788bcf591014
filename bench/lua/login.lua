-- POST a JSON login body (the first script argument) and count the status
-- codes of the answers: 200 logged in, 429 rate limited or locked out, 503
-- hashing queue full.
--   wrk ... -s login.lua http://127.0.0.1:PORT/api/v1/auth/login -- '{"email":…}'
dofile(os.getenv("BENCH_LUA") .. "/report.lua")

function init(args)
   wrk.method = "POST"
   wrk.body = args[1]
   wrk.headers["Content-Type"] = "application/json"
end

function response(status, headers, body)
   count_status(status)
end
