-- items: every live item of one group, as HGETALL or HKEYS would give them. Read-only.
-- KEYS[1] data hash, KEYS[4] expiries (KEYS[2], KEYS[3] unused).
-- ARGV[1] 'values' for field, value pairs (HGETALL), 'keys' for fields only (HKEYS).
-- Returns a flat array: field, value, field, value, ... or field, field, ...
-- Keys touched: KEYS[1] (HGETALL or HKEYS), KEYS[4] (EXISTS, ZRANGEBYSCORE).
local with_values = ARGV[1] == 'values'
local all = redis.call(with_values and 'HGETALL' or 'HKEYS', KEYS[1])
if redis.call('EXISTS', KEYS[4]) == 0 then
  return all
end
local expired = {}
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms())) do
  expired[field] = true
end
local out = {}
local step = with_values and 2 or 1
for i = 1, #all, step do
  if not expired[all[i]] then
    out[#out + 1] = all[i]
    if with_values then
      out[#out + 1] = all[i + 1]
    end
  end
end
return out
