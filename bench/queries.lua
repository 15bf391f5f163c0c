-- wrk: a mix of list, search, filter, paging and get-by-id queries on one large gym.
local ids = {}
local paths = {}

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  for line in io.lines(os.getenv("BENCH_IDS")) do table.insert(ids, line) end
  local base = os.getenv("BENCH_PATH")
  paths = {
    base .. "?search=load1234",
    base .. "?search=bench7",
    base .. "?active=true",
    base .. "?active=false&limit=20",
    base .. "?min_age=30&max_age=40",
    base .. "?last_name=load99",
    base .. "?offset=5000&limit=50",
    base .. "?limit=200",
  }
end

local n = 0
function request()
  n = n + 1
  if n % 3 == 0 then
    return wrk.format("GET", os.getenv("BENCH_PATH") .. "/" .. ids[math.random(#ids)])
  end
  return wrk.format("GET", paths[math.random(#paths)])
end
