-- get_item: one item's value, version and expiry in one consistent snapshot. Read-only.
-- uses: clock
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] expiries.
-- ARGV[1] item key.
-- Returns nil when absent or expired, else {encoded_value, version, expiry ms or false,
--   ms left until that expiry or false} (version 1 when none is recorded, as for values
--   written by other tools; the ms left, by the server's clock, let the near cache expire
--   its copy by its own monotonic clock, without comparing clocks). The expiry is the earlier
--   of the item's own and its group's (the data hash's PEXPIRETIME: the group's deadline when
--   it expires whole, or an expiry another tool gave the hash). Both are absolute, and the ms
--   left are counted from the clock read last, so the near cache's copy never outlives either.
-- Keys touched: KEYS[1] (HGET, PEXPIRETIME), KEYS[2] (HGET), KEYS[3] (ZSCORE).
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return nil
end
local at = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]))
local group_at = redis.call('PEXPIRETIME', KEYS[1])
local left = false
if at or group_at >= 0 then
  if group_at >= 0 and (not at or group_at < at) then
    at = group_at
  end
  left = at - now_ms()
  if left <= 0 then
    return nil
  end
end
return {value, tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 1, at or false, left}
