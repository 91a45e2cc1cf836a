-- get_many: the encoded values of some items of one group, nil for absent or expired ones.
--   Read-only.
-- KEYS[1] data hash, KEYS[4] expiries (KEYS[2], KEYS[3] unused).
-- ARGV: the item keys (at most a few thousand; the caller chunks).
-- Returns one encoded value or nil per key, in order.
-- Keys touched: KEYS[1] (HMGET), KEYS[4] (EXISTS, ZMSCORE).
local values = redis.call('HMGET', KEYS[1], unpack(ARGV))
if redis.call('EXISTS', KEYS[4]) == 1 then
  local now = now_ms()
  local ats = redis.call('ZMSCORE', KEYS[4], unpack(ARGV))
  for i = 1, #ARGV do
    local at = tonumber(ats[i])
    if at and at <= now then
      values[i] = false
    end
  end
end
return values
