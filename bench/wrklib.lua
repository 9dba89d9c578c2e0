-- Shared by the wrk scripts in bench/. Load it from a script with
--
--   local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")
--
-- which finds it next to the script, wherever wrk is run from. wrk gives
-- the main Lua state (setup, done) and each thread's state their own copy.
local M = {}

-- The threads wrk made, in the main state, for done() to sum over.
M.threads = {}

-- setup: give each thread its number (global "id", from 0) and keep it.
-- Use as `setup = lib.setup`.
function M.setup(thread)
   thread:set("id", #M.threads)
   table.insert(M.threads, thread)
end

-- seed_random: seed the thread's random numbers with the time and its id.
-- Use as `init = lib.seed_random`.
function M.seed_random()
   math.randomseed(os.time() * 1000 + id)
end

-- sum NAME: the global NAME summed over the threads (0 where unset).
function M.sum(name)
   local n = 0
   for _, t in ipairs(M.threads) do n = n + (t:get(name) or 0) end
   return n
end

-- counters KEY...: set the global counter "s" .. KEY to 0 for each KEY.
-- Counters are globals so that done() can read them with thread:get.
function M.counters(...)
   for _, k in ipairs({...}) do _G["s" .. k] = 0 end
end

-- count_status STATUS HEADERS: add one to the counter of STATUS ("s201"),
-- or, where the script keeps none for it, to s5xx for a 5xx, to sother
-- otherwise; and to "s" .. STATUS .. "ra" too, where kept, when the answer
-- has a Retry-After header.
function M.count_status(status, headers)
   local k = "s" .. status
   if _G[k] then
      _G[k] = _G[k] + 1
      if _G[k .. "ra"] and headers["Retry-After"] then _G[k .. "ra"] = _G[k .. "ra"] + 1 end
   elseif status >= 500 and status < 600 then
      s5xx = s5xx + 1
   else
      sother = sother + 1
   end
end

-- statuses LABEL KEY...: the line "LABEL statuses KEY=N ...", N the
-- counter "s" .. KEY summed over the threads.
function M.statuses(label, ...)
   local parts = {}
   for _, k in ipairs({...}) do parts[#parts + 1] = string.format("%s=%d", k, M.sum("s" .. k)) end
   return label .. " statuses " .. table.concat(parts, " ") .. "\n"
end

return M
