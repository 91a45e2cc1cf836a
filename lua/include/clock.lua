-- clock: the server's time, for expiry decisions.
-- KEYS: none. ARGV: none.
-- Returns: nothing; defines local function now_ms() -> ms since the epoch (TIME).
-- Keys touched: none.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
