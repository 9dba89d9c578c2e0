-- wrk script: GET /movies/?page=N with N drawn at random from 1..200, so
-- that the service's single-flight does not fold every request into one
-- catalogue call. The bearer token comes from wrk's -H option.
local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

init = lib.seed_random

function request()
   return wrk.format(nil, "/movies/?page=" .. math.random(1, 200))
end
