-- wrk script for bench/chaos.sh: GET /movies/?page=N with N drawn at
-- random from 1..10, the pages warmed up before the catalogue goes down.
-- It counts the answers by kind (2xx, of which remembered pages, and each
-- failing status) and prints them with the latency percentiles on one
-- line starting "chaos:", for the script to read. The bearer token comes
-- from wrk's -H option.
local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

-- Per thread.
ok, stale, s502, s503, s504, other = 0, 0, 0, 0, 0, 0

init = lib.seed_random

function request()
   return wrk.format(nil, "/movies/?page=" .. math.random(1, 10))
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
      if headers["Cache-Status"] or headers["cache-status"] then
         stale = stale + 1
      end
   elseif status == 502 then
      s502 = s502 + 1
   elseif status == 503 then
      s503 = s503 + 1
   elseif status == 504 then
      s504 = s504 + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local t = {}
   for _, k in ipairs({"ok", "stale", "s502", "s503", "s504", "other"}) do t[k] = lib.sum(k) end
   local e = summary.errors
   io.write(string.format(
      "chaos: requests=%d ok=%d stale=%d s502=%d s503=%d s504=%d other=%d " ..
      "socket_errors=%d p50_us=%d p99_us=%d duration_us=%d\n",
      summary.requests, t.ok, t.stale, t.s502, t.s503, t.s504, t.other,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), summary.duration))
end
