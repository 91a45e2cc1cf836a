-- alive: whether a group holds an item that has not expired (for list_groups). Read-only.
-- uses: clock
-- KEYS[1] data hash, KEYS[2] expiries.
-- ARGV: none.
-- Returns 1 or 0.
-- Keys touched: KEYS[1] (HLEN, HEXISTS), KEYS[2] (ZCOUNT, ZRANGEBYSCORE).
-- Expiry entries may outlive their items (another tool's HDEL), so when the count alone cannot
-- tell, the expired entries are matched against the hash: linear in them, and only then.
local n = redis.call('HLEN', KEYS[1])
if n == 0 then
  return 0
end
local now = now_ms()
if n > redis.call('ZCOUNT', KEYS[2], '-inf', now) then
  return 1
end
local expired = 0
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  expired = expired + redis.call('HEXISTS', KEYS[1], field)
end
return n > expired and 1 or 0
