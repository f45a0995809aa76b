-- PUT a ~100-byte row at a random existing id in 1..ROWS (env ROWS).
local rows = tonumber(os.getenv("ROWS") or "1000")
local body = '{"name":"Lee Jun","email":"jun@example.com","city":"Busan","note":"replaced row"}'
local headers = { ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("PUT", "/t/" .. math.random(1, rows), headers, body)
end
