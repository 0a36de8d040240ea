-- post_json.lua: create fortunes through the JSON API with a bearer token.
-- The token comes from the first argument or from the TOKEN environment
-- variable; it must be one of the server's auth.tokens.
--   TOKEN=secret wrk -t1 -c16 -d10s --latency -s post_json.lua http://127.0.0.1:8080
--   wrk -t1 -c16 -d10s -s post_json.lua http://127.0.0.1:8080 -- secret
local token
local counter = 0

init = function(args)
  token = args[1] or os.getenv("TOKEN")
  if token == nil or token == "" then
    error("post_json.lua needs a token: pass it after -- or set TOKEN")
  end
end

request = function()
  counter = counter + 1
  local body = string.format('{"message":"load test fortune %d"}', counter)
  return wrk.format("POST", "/api/v1/fortunes", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end
