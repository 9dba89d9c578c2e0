-- wrk script: GET /movies/?page=N with N drawn at random from 1..200, so
-- that the service's single-flight does not fold every request into one
-- catalogue call. The bearer token comes from wrk's -H option.
local threads = 0

function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

function init(args)
   math.randomseed(os.time() * 1000 + id)
end

function request()
   return wrk.format(nil, "/movies/?page=" .. math.random(1, 200))
end
