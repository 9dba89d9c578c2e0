-- wrk script: POST /collection/ with a small collection of two movies,
-- each request for a random user of the token file BENCH_POST_TOKENS (a
-- user may keep 1,000 collections).
local tokens = {}
for line in io.lines(os.getenv("BENCH_POST_TOKENS")) do
  tokens[#tokens + 1] = line
end
math.randomseed(os.time())

request = function()
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format()
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"title":"Benchmark night","description":"created by wrk","movies":[
{"uuid":"720e8796-5397-4e81-9bd7-763789463707","title":"Betrayal","description":"When one of her hits goes wrong, a professional assassin ends up with a suitcase full of a million dollars belonging to a mob boss.","genres":"Action,Drama,Thriller"},
{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"Queerama","description":"50 years after decriminalisation of homosexuality in the UK, director Daisy Asquith mines the jewels of the BFI archive.","genres":""}]}]]
