-- GET at full speed; headers (Cookie, Authorization) come from wrk's -H.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
