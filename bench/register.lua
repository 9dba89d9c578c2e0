-- wrk script: POST /register/ with a new username on every request:
-- "bench", the run's tag (the first script argument), the thread and a
-- per-thread counter. The password is fixed; bcrypt makes this endpoint
-- slow by design.
local threads = 0

function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

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
