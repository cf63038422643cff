-- wrk script for scripts/rss.sh: each wrk thread POSTs fresh users until it has had LIMIT
-- successful answers (201), then stops and leaves a file named after it in DONE_DIR (wrk's
-- main thread sleeps out -d whatever its threads do, so rss.sh watches for those files).
local limit = tonumber(os.getenv("LIMIT") or "1000")
local headers = { ["Content-Type"] = "application/json" }
local tag, sent, created = "0", 0, 0
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
  local body = string.format('{"name":"Load User %s-%d","email":"load%s-%d@example.com"}',
    tag, sent, tag, sent)
  return wrk.format("POST", "/users", headers, body)
end

local finished = false

function response(status, headers, body)
  if status == 201 then created = created + 1 end
  if created >= limit and not finished then
    finished = true
    local f = io.open((os.getenv("DONE_DIR") or ".") .. "/" .. tag, "w")
    if f then f:write(created, "\n") f:close() end
    wrk.thread:stop()
  end
end
