-- expired_among: which of the given item keys have expired (for get_many and HSCAN pages).
--   Read-only.
-- uses: clock
-- KEYS[1] expiries.
-- ARGV: item keys (at most a few thousand; the caller chunks).
-- Returns the expired keys among them.
-- Keys touched: KEYS[1] (EXISTS, ZMSCORE).
if #ARGV == 0 or redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local now = now_ms()
local ats = redis.call('ZMSCORE', KEYS[1], unpack(ARGV))
local out = {}
for i = 1, #ARGV do
  local at = tonumber(ats[i])
  if at and at <= now then
    out[#out + 1] = ARGV[i]
  end
end
return out
