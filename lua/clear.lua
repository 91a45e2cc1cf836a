-- clear: remove every item of one group and its metadata: an 'expire' record for each item
--   found expired, then one 'clear' record when live items were removed.
-- uses: clock common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] feed settings (see include/common.lua).
-- Returns the number of items removed that had not expired (never negative: expiry entries
--   left behind by another tool's HDEL count for nothing).
-- Keys touched: KEYS[1] (HLEN, HEXISTS, HGET, HDEL, UNLINK: memory is freed off the main
--   thread), KEYS[2] (HVALS, HGET, HDEL, UNLINK, then HSET and PEXPIRE of the floor), KEYS[3]
--   (XADD, XTRIM), KEYS[4] (EXISTS, ZRANGEBYSCORE, ZSCORE, ZREM, UNLINK), KEYS[5] (SREM);
--   PUBLISH (markers).
-- Cost: the expired items are purged one by one (as cleanup would), and the new floor is above
--   every stored version, so this reads them all (HVALS): linear in the number of expired
--   items and of items at version 2 or more.
acl_group(KEYS)
acl_need('HLEN', KEYS[1])
acl_need('HVALS', KEYS[2])
acl_need('UNLINK', KEYS[1], KEYS[2], KEYS[4])
local feed = feed_open(ARGV[2])
return feed_guard(feed, function()
  local now = now_ms()
  if redis.call('EXISTS', KEYS[4]) == 1 then
    for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
      purge_expired(KEYS, field, ARGV[1], feed, now, true)
    end
  end
  local n = redis.call('HLEN', KEYS[1])
  local floor = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    floor = math.max(floor, tonumber(v) or 0)
  end
  if n > 0 then
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
end)
