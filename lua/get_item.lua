-- get_item: one item's value, version and expiry in one consistent snapshot. Read-only.
-- uses: clock
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] expiries.
-- ARGV[1] item key.
-- Returns nil when absent or expired, else {encoded_value, version, expiry ms or false,
--   ms left until that expiry or false} (version 1 when none is recorded, as for values
--   written by other tools; the ms left, by the server's clock, let the near cache expire
--   its copy by its own monotonic clock, without comparing clocks). The expiry is the earlier
--   of the item's own and its group's (the data hash's PTTL: the group's deadline when it
--   expires whole, or an expiry another tool gave the hash).
-- Keys touched: KEYS[1] (HGET, PTTL), KEYS[2] (HGET), KEYS[3] (ZSCORE).
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return nil
end
local at = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]))
local group_left = redis.call('PTTL', KEYS[1])
local left = false
if at or group_left >= 0 then
  local now = now_ms()
  if group_left >= 0 and (not at or now + group_left < at) then
    at = now + group_left
  end
  left = at - now
  if left <= 0 then
    return nil
  end
end
return {value, tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 1, at or false, left}
