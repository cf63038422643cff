-- wrk script for scripts/churn.sh. MODE=patch: unconditional PATCHes of the user USER_ID, the
-- name alternating so that every request is a real change. MODE=cycle: each connection creates
-- a user and deletes it again, so the store stays near empty while its write history grows.
-- Each wrk thread stops after LIMIT answers and leaves a file named after it in DONE_DIR with
-- the count of answers that were not 2xx and the first of them (wrk's main thread sleeps out -d whatever its
-- threads do, so churn.sh watches for those files).
local limit = tonumber(os.getenv("LIMIT") or "1000")
local mode = os.getenv("MODE") or "patch"
local user = os.getenv("USER_ID") or ""
local headers = { ["Content-Type"] = "application/json" }
local tag, sent, answered, failed = "0", 0, 0, 0
local pending = {}
local first = ""
local threads = {}

function setup(thread)
  thread:set("tag", tostring(#threads + 1))
  table.insert(threads, thread)
end

function init(args)
  tag = wrk.thread:get("tag") or "0"
end

function request()
  sent = sent + 1
  if mode == "patch" then
    local body = string.format('{"name":"Churn %d"}', sent % 2)
    return wrk.format("PATCH", "/users/" .. user, headers, body)
  end
  local id = table.remove(pending)
  if id then
    return wrk.format("DELETE", "/users/" .. id)
  end
  local body = string.format('{"name":"Cycle","email":"cycle%s-%d@example.com"}', tag, sent)
  return wrk.format("POST", "/users", headers, body)
end

local finished = false

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    failed = failed + 1
    if failed == 1 then first = status .. " " .. body end
  end
  if status == 201 then
    local id = body:match('"id":"([0-9a-f%-]+)"')
    if id then table.insert(pending, id) end
  end
  if answered >= limit and not finished then
    finished = true
    local f = io.open((os.getenv("DONE_DIR") or ".") .. "/" .. tag, "w")
    if f then f:write(failed, "\t", first, "\n") f:close() end
    wrk.thread:stop()
  end
end
