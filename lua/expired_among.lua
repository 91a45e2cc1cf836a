-- expired_among: which of the given item keys have expired (for pages of HSCAN). Read-only.
-- KEYS[4] expiries (KEYS[1..3] unused).
-- ARGV: item keys.
-- Returns the expired keys among them.
-- Keys touched: KEYS[4] (EXISTS, ZMSCORE).
if #ARGV == 0 or redis.call('EXISTS', KEYS[4]) == 0 then
  return {}
end
local now = now_ms()
local ats = redis.call('ZMSCORE', KEYS[4], unpack(ARGV))
local out = {}
for i = 1, #ARGV do
  local at = tonumber(ats[i])
  if at and at <= now then
    out[#out + 1] = ARGV[i]
  end
end
return out
