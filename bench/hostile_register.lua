-- wrk script for bench/hostile.sh: POST /register/ with a new username on
-- every request ("h", the run's tag from the first script argument, the
-- thread and a per-thread counter), so that every connection is a
-- registration loop that makes the server hash a password.
--
-- Answers are counted by status in the response hook, and the 503s and
-- 429s with a Retry-After header apart; done() prints them on a line
-- starting with "hostile:" for bench/hostile.sh to read.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- Counters, globals so that done() can read them with thread:get.
s201, s409, s429, s503, s503ra, s429ra, s5xx, sother = 0, 0, 0, 0, 0, 0, 0, 0

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
   if status == 201 then s201 = s201 + 1
   elseif status == 409 then s409 = s409 + 1
   elseif status == 429 then
      s429 = s429 + 1
      if headers["Retry-After"] then s429ra = s429ra + 1 end
   elseif status == 503 then
      s503 = s503 + 1
      if headers["Retry-After"] then s503ra = s503ra + 1 end
   elseif status >= 500 and status < 600 then s5xx = s5xx + 1
   else sother = sother + 1 end
end

local function sum(name)
   local n = 0
   for _, t in ipairs(threads) do n = n + (t:get(name) or 0) end
   return n
end

function done(summary, latency, requests)
   io.write(string.format("hostile: statuses 201=%d 409=%d 429=%d 429ra=%d 503=%d 503ra=%d 5xx=%d other=%d\n",
      sum("s201"), sum("s409"), sum("s429"), sum("s429ra"), sum("s503"), sum("s503ra"), sum("s5xx"), sum("sother")))
end
