-- wrk: POST /check-ins at the front desk, one random member of the gym per scan.
local ids = {}

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  for line in io.lines(os.getenv("BENCH_IDS")) do table.insert(ids, line) end
end

function request()
  local body = string.format('{"customer_id":"%s"}', ids[math.random(#ids)])
  return wrk.format(nil, os.getenv("BENCH_PATH"), nil, body)
end
