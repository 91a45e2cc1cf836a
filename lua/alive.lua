-- alive: whether a group holds an item that has not expired (for list_groups). Read-only.
-- uses: clock
-- KEYS[1] data hash, KEYS[2] expiries.
-- ARGV: none.
-- Returns 1 or 0.
-- Keys touched: KEYS[1] (HLEN), KEYS[2] (ZCOUNT).
local n = redis.call('HLEN', KEYS[1])
if n > 0 and n > redis.call('ZCOUNT', KEYS[2], '-inf', now_ms()) then
  return 1
end
return 0
