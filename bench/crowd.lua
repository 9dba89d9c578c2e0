-- wrk script for bench/crowd.sh: every request is for a random user of the
-- crowd that bench/seed created, and is a read or a write at random.
--
-- Script arguments, in order (all but the first have defaults):
--   users file   one line per user: "token uuid1 uuid2 ..." (bench/seed)
--   write %      share of writes, 0-100                         (default 0)
--   list get count                 weights of the reads:
--                GET /collection/, GET /collection/{uuid}/,
--                GET /request-count/                      (default 50 38 12)
--   put post     weights of the writes: PUT /collection/{uuid}/ (a
--                rename), POST /collection/                 (default 70 30)
--   movies       movies in each created collection             (default 10)
--
-- Answers are counted by status class in the response hook; done() prints
-- them, and how many requests of each kind were sent, on lines starting
-- with "crowd:" for bench/crowd.sh to read.

local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrklib.lua")

setup = lib.setup

local users = {}        -- {auth = "Bearer ...", ids = {uuid, ...}}
local write_share, list_w, get_w, count_w, put_w, post_w
local bodies = {}       -- POST bodies, made once per thread
local renames = 0

local genres = {"Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary",
   "Drama", "Family", "Fantasy", "History", "Horror", "Music", "Mystery", "Romance",
   "Science Fiction", "Thriller", "War", "Western"}
local words = {"Evening", "Shadows", "Road", "Paper", "Moons", "Harbour", "Lights",
   "Iron", "Meadow", "Quiet", "Storm", "Glass", "Kingdom", "Northern", "Line", "Salt",
   "Smoke", "Orchard", "River", "Winter", "Garden", "Silent", "City", "Last", "Summer"}

-- Counters, globals so that done() can read them with thread:get.
lib.counters("2xx", "3xx", "4xx", "5xx", "409", "429", "503", "other")
n_list, n_get, n_count, n_put, n_post = 0, 0, 0, 0, 0

local function hex(n)
   local t = {}
   for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
   return table.concat(t)
end

local function uuid()
   return hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-" ..
      string.format("%x", math.random(8, 11)) .. hex(3) .. "-" .. hex(12)
end

local function movie()
   local g = {}
   local n = math.random(1, 3)
   if math.random(1, 20) == 1 then n = 0 end
   for i = 1, n do g[i] = genres[math.random(#genres)] end
   local title = words[math.random(#words)] .. " " .. words[math.random(#words)]
   return string.format('{"uuid":"%s","title":"%s","description":"A film about %s, told in a couple of sentences as the catalogue does.","genres":"%s"}',
      uuid(), title, string.lower(title), table.concat(g, ","))
end

local function post_body(movies)
   local m = {}
   for i = 1, movies do m[i] = movie() end
   return string.format('{"title":"%s night","description":"created by wrk","movies":[%s]}',
      words[math.random(#words)], table.concat(m, ","))
end

function init(args)
   math.randomseed(os.time() * 1000 + id * 7919)
   local file = args[1] or error("crowd.lua: give the users file as the first script argument")
   write_share = tonumber(args[2] or 0)
   list_w, get_w, count_w = tonumber(args[3] or 50), tonumber(args[4] or 38), tonumber(args[5] or 12)
   put_w, post_w = tonumber(args[6] or 70), tonumber(args[7] or 30)
   local movies = tonumber(args[8] or 10)
   for line in io.lines(file) do
      local ids = {}
      for field in string.gmatch(line, "%S+") do table.insert(ids, field) end
      if #ids >= 2 then
         local token = table.remove(ids, 1)
         table.insert(users, {auth = "Bearer " .. token, ids = ids})
      end
   end
   if #users == 0 then error("crowd.lua: no users in " .. file) end
   for i = 1, 32 do bodies[i] = post_body(movies) end
end

local json = "application/json"

function request()
   local u = users[math.random(#users)]
   local h = {["Authorization"] = u.auth}
   if math.random() * 100 < write_share then
      if math.random() * (put_w + post_w) < put_w then
         n_put = n_put + 1
         renames = renames + 1
         h["Content-Type"] = json
         return wrk.format("PUT", "/collection/" .. u.ids[math.random(#u.ids)] .. "/", h,
            '{"title":"Renamed ' .. id .. "-" .. renames .. '"}')
      end
      n_post = n_post + 1
      h["Content-Type"] = json
      return wrk.format("POST", "/collection/", h, bodies[math.random(#bodies)])
   end
   local r = math.random() * (list_w + get_w + count_w)
   if r < list_w then
      n_list = n_list + 1
      return wrk.format("GET", "/collection/", h)
   elseif r < list_w + get_w then
      n_get = n_get + 1
      return wrk.format("GET", "/collection/" .. u.ids[math.random(#u.ids)] .. "/", h)
   end
   n_count = n_count + 1
   return wrk.format("GET", "/request-count/", h)
end

function response(status, headers, body)
   if status < 300 then s2xx = s2xx + 1
   elseif status < 400 then s3xx = s3xx + 1
   elseif status < 500 then
      s4xx = s4xx + 1
      if status == 409 then s409 = s409 + 1 elseif status == 429 then s429 = s429 + 1 end
   elseif status < 600 then
      s5xx = s5xx + 1
      if status == 503 then s503 = s503 + 1 end
   else sother = sother + 1 end
end

local sum = lib.sum

function done(summary, latency, requests)
   io.write(lib.statuses("crowd:", "2xx", "3xx", "4xx", "5xx", "409", "429", "503", "other"))
   io.write(string.format("crowd: sent list=%d get=%d count=%d put=%d post=%d\n",
      sum("n_list"), sum("n_get"), sum("n_count"), sum("n_put"), sum("n_post")))
end
