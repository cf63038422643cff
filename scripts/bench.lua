-- wrk script for userd's Users API (used by scripts/bench.sh).
--
-- Environment:
--   SCENARIO  health | get | post | mixed | miss            (default: get)
--               health  GET /health
--               get     GET /users/{id} of a random seeded user
--               post    POST /users with a fresh, valid user
--               mixed   9 in 10 a get as above, 1 in 10 a post
--               miss    GET /users/{id} of an id no user has (404)
--   IDS_FILE  seeded user ids, one a line (needed by get and mixed)
--   PIPELINE  requests per write, for HTTP/1.1 pipelining (default: 1)
--
-- When the run ends it prints one machine-readable line, latencies in microseconds:
--   WRKJSON {"requests":..,"duration_us":..,"rps":..,"p50_us":..,"p90_us":..,"p99_us":..,
--            "p999_us":..,"max_us":..,"connect_err":..,"read_err":..,"write_err":..,
--            "status_err":..,"timeout":..,"unexpected":..}
-- (on one line). status_err counts responses with a status of 400 or more; unexpected counts
-- answers other than the 404 the miss scenario expects (-1 in other scenarios).

local scenario = os.getenv("SCENARIO") or "get"
local depth = tonumber(os.getenv("PIPELINE") or "1") or 1
if depth < 1 then depth = 1 end

local known = { health = true, get = true, post = true, mixed = true, miss = true }
if not known[scenario] then
  error("unknown SCENARIO '" .. scenario .. "' (health, get, post, mixed, miss)")
end

local function read_ids(path)
  local ids = {}
  if not path or path == "" then return ids end
  local f = io.open(path, "r")
  if not f then error("cannot open IDS_FILE " .. path) end
  for line in f:lines() do
    local id = line:match("^%s*(%S+)%s*$")
    if id then ids[#ids + 1] = id end
  end
  f:close()
  return ids
end

local user_paths = {}
local json_headers = { ["Content-Type"] = "application/json" }
local posted = 0
local thread_tag = "0"  -- set per thread in init

-- One request of the scenario, as raw HTTP/1.1 text.
local one_request

local function get_known()
  return wrk.format("GET", user_paths[math.random(#user_paths)])
end

local function post_new()
  posted = posted + 1
  local body = string.format('{"name":"Load User %s-%d","email":"load%s-%d@example.com"}',
    thread_tag, posted, thread_tag, posted)
  return wrk.format("POST", "/users", json_headers, body)
end

local health_request
local function get_health()
  return health_request
end

local function get_missing()
  -- Canonical v4-shaped ids, so the server does the whole lookup, from a corner of the id
  -- space ("0000bead-0000-4000-8000-...") that a random id lands in with odds of 1 in 2^90.
  local tail = string.format("%012x", math.random(0, 2147483646))
  return wrk.format("GET", "/users/0000bead-0000-4000-8000-" .. tail)
end

local function mixed()
  if math.random(10) == 1 then return post_new() end
  return get_known()
end

local pick = {
  health = get_health,
  get = get_known,
  post = post_new,
  mixed = mixed,
  miss = get_missing,
}

-- Runs in wrk's main Lua state before the threads start: number the threads, so that each
-- seeds its own random sequence and names its posted users apart from the others'.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

-- A constant pipelined batch, for scenarios whose requests never change.
local batch

-- Runs once per wrk thread, in that thread's own Lua state.
function init(args)
  local n = thread_number or 0
  math.randomseed(os.time() * 1000 + n)
  -- Emails stay unique across threads and across runs against one server, should userd ever
  -- refuse a taken email.
  thread_tag = string.format("%d-%x-%d", os.time(), math.random(0, 0xffffff), n)
  health_request = wrk.format("GET", "/health")
  if scenario == "get" or scenario == "mixed" then
    local ids = read_ids(os.getenv("IDS_FILE"))
    if #ids == 0 then
      error("SCENARIO " .. scenario .. " needs IDS_FILE with at least one user id")
    end
    for i, id in ipairs(ids) do user_paths[i] = "/users/" .. id end
  end
  one_request = pick[scenario]
  if scenario == "health" then batch = string.rep(health_request, depth) end
  if scenario == "miss" then
    -- Every answer should be a 404, which wrk counts as an error; count what is not one
    -- instead. (Only here: a response() function makes wrk hand every response to Lua, which
    -- costs the load generator time the other scenarios should not pay.)
    unexpected = 0
    response = function(status)
      if status ~= 404 then unexpected = unexpected + 1 end
    end
  end
end

function request()
  if batch then return batch end
  if depth == 1 then return one_request() end
  local parts = {}
  for i = 1, depth do parts[i] = one_request() end
  return table.concat(parts)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  -- -1: statuses were not checked one by one; status_err (400 and up) is the figure to use.
  local bad = -1
  if scenario == "miss" then
    bad = 0
    for _, t in ipairs(threads) do bad = bad + (t:get("unexpected") or 0) end
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"p999_us":%d,"max_us":%d,"connect_err":%d,"read_err":%d,' ..
    '"write_err":%d,"status_err":%d,"timeout":%d,"unexpected":%d}\n',
    summary.requests, summary.duration, secs > 0 and summary.requests / secs or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, bad))
end
