-- wrk script for bench/hostile.sh: POST /collection/ with a body over the
-- limits, the same body on every request, as fast as the connection allows.
-- The bearer token comes from wrk's -H option.
--
-- Script argument: the kind of bomb
--   genres       one movie whose genres are "g0,g1,...,g39999" (over 260 KB;
--                the limit is 1,000 bytes)
--   movies       1,001 movies, each with its own UUID (the limit is 1,000)
--   description  a description of 2,001 characters (the limit is 2,000)
--
-- Answers are counted by status in the response hook; done() prints them
-- on a line starting with "hostile:" for bench/hostile.sh to read, and the
-- body's size on a line of its own.

local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

-- Counters, globals so that done() can read them with thread:get.
lib.counters("201", "400", "413", "429", "503", "5xx", "other")

local function body_of(kind)
   if kind == "genres" then
      local g = {}
      for i = 0, 39999 do g[#g + 1] = "g" .. i end
      return '{"title":"Genres bomb","movies":[{"uuid":"720e8796-5397-4e81-9bd7-763789463707",' ..
         '"title":"Betrayal","description":"","genres":"' .. table.concat(g, ",") .. '"}]}'
   elseif kind == "movies" then
      local m = {}
      for i = 1, 1001 do
         m[i] = string.format('{"uuid":"%08x-0000-4000-8000-%012x","title":"Film %d","genres":"Drama"}',
            0x5eed, i, i)
      end
      return '{"title":"Movies bomb","movies":[' .. table.concat(m, ",") .. ']}'
   elseif kind == "description" then
      return '{"title":"Description bomb","description":"' .. string.rep("d", 2001) .. '","movies":[]}'
   end
   error("hostile_bomb.lua: the script argument must be genres, movies or description, not " .. tostring(kind))
end

local req
body_bytes = 0

function init(args)
   local body = body_of(args[1])
   body_bytes = #body
   wrk.headers["Content-Type"] = "application/json"
   -- nil headers: wrk.headers, which holds -H's Authorization.
   req = wrk.format("POST", "/collection/", nil, body)
end

function request()
   return req
end

function response(status, headers, body)
   lib.count_status(status, headers)
end

function done(summary, latency, requests)
   io.write(lib.statuses("hostile:", "201", "400", "413", "429", "503", "5xx", "other"))
   io.write(string.format("hostile: body_bytes %d\n", lib.threads[1]:get("body_bytes") or 0))
end
