-- wrk: POST /customers with a unique body per request (16 connections, see run.py).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"first_name":"Bench%d","last_name":"Load%d","email":"b%d_%d@bench.example","membership_end":"2099-01-01"}',
    thread_id, counter, thread_id, counter)
  return wrk.format(nil, os.getenv("BENCH_PATH"), nil, body)
end
