-- mixed.lua: a read-mostly mix on the JSON API. Most requests GET a random
-- world; a share of them (default 10 %) PUT a new randomNumber with a bearer
-- token. Arguments: token (or the TOKEN environment variable), write percent.
--   TOKEN=secret wrk -t1 -c64 -d30s --latency -s mixed.lua http://127.0.0.1:8080 -- "" 20
local token
local writes = 10

init = function(args)
  token = args[1]
  if token == nil or token == "" then
    token = os.getenv("TOKEN")
  end
  if token == nil or token == "" then
    error("mixed.lua needs a token: pass it after -- or set TOKEN")
  end
  writes = tonumber(args[2]) or writes
  -- Each wrk thread has its own Lua state: seed each from a table address
  -- so the threads do not all draw the same ids.
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end

request = function()
  local id = math.random(1, 10000)
  local path = "/api/v1/worlds/" .. id
  if math.random(1, 100) <= writes then
    local body = string.format('{"randomNumber":%d}', math.random(1, 10000))
    return wrk.format("PUT", path, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
    }, body)
  end
  return wrk.format("GET", path)
end
