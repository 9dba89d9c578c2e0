-- wrk script for bench/hostile.sh: POST /register/ with a new username on
-- every request ("h", the run's tag from the first script argument, the
-- thread and a per-thread counter), so that every connection is a
-- registration loop that makes the server hash a password.
--
-- Answers are counted by status in the response hook, and the 503s and
-- 429s with a Retry-After header apart; done() prints them on a line
-- starting with "hostile:" for bench/hostile.sh to read.

local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

-- Counters, globals so that done() can read them with thread:get.
lib.counters("201", "409", "429", "429ra", "503", "503ra", "5xx", "other")

local prefix
local n = 0

function init(args)
   prefix = "h" .. (args[1] or tostring(os.time())) .. "t" .. id .. "n"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   n = n + 1
   local body = string.format('{"username":"%s%d","password":"correct horse battery"}', prefix, n)
   return wrk.format("POST", "/register/", nil, body)
end

function response(status, headers, body)
   lib.count_status(status, headers)
end

function done(summary, latency, requests)
   io.write(lib.statuses("hostile:", "201", "409", "429", "429ra", "503", "503ra", "5xx", "other"))
end
