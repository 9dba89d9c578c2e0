-- wrk script: POST /register/ with a new username on every request:
-- "bench", the run's tag (the first script argument), the thread and a
-- per-thread counter. The password is fixed; bcrypt makes this endpoint
-- slow by design.
local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

local prefix
local n = 0

function init(args)
   prefix = "bench" .. (args[1] or tostring(os.time())) .. "t" .. id .. "n"
end

function request()
   n = n + 1
   local body = string.format('{"username":"%s%d","password":"correct horse battery"}', prefix, n)
   return wrk.format("POST", "/register/", {["Content-Type"] = "application/json"}, body)
end
