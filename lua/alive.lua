-- alive: whether a group holds an item that has not expired (for list_groups). Read-only.
-- KEYS[1] data hash, KEYS[4] expiries (KEYS[2], KEYS[3] unused).
-- ARGV: none.
-- Returns 1 or 0.
-- Keys touched: KEYS[1] (HLEN), KEYS[4] (ZCOUNT).
local n = redis.call('HLEN', KEYS[1])
if n > 0 and n > redis.call('ZCOUNT', KEYS[4], '-inf', now_ms()) then
  return 1
end
return 0
