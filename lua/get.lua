-- get: one item's encoded value, unless it has expired. Read-only.
-- uses: clock
-- KEYS[1] data hash, KEYS[2] expiries.
-- ARGV[1] item key.
-- Returns the encoded value, or nil when absent or expired.
-- Keys touched: KEYS[1] (HGET), KEYS[2] (ZSCORE).
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then
  local at = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
  if at and at <= now_ms() then
    return nil
  end
end
return value
