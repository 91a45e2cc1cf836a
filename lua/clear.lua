-- clear: remove every item of one group and its metadata, recording one 'clear' change.
-- uses: clock common
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] feed settings (see include/common.lua).
-- Returns the number of items removed that had not expired.
-- Keys touched: KEYS[1], KEYS[2] and KEYS[4] (UNLINK: memory is freed off the main thread;
--   KEYS[2] HVALS first, then HSET and PEXPIRE of the floor), KEYS[3] (XADD, XTRIM, only when
--   something was removed), KEYS[5] (SREM); PUBLISH (markers).
-- Cost: the new floor is above every stored version, so this reads them all (HVALS): linear
--   in the number of items at version 2 or more, the one part of a clear that is.
local feed = feed_open(ARGV[2])
local total = redis.call('HLEN', KEYS[1])
local n = total
if n > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  n = n - redis.call('ZCOUNT', KEYS[4], '-inf', now_ms())
end
local floor = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
  floor = math.max(floor, tonumber(v) or 0)
end
if total > 0 then
  floor = math.max(floor, 1) + 1
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[4])
if floor > 0 then
  redis.call('HSET', KEYS[2], '', string.format('%d', floor))
  redis.call('PEXPIRE', KEYS[2], FLOOR_TTL_MS)
end
if KEYS[5] then
  redis.call('SREM', KEYS[5], ARGV[1])
end
if n > 0 then
  record(feed, KEYS[3], 'clear', ARGV[1], '', floor, 0, false, false)
end
return feed_close(feed, n)
