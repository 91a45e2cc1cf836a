-- clear: remove every item of one group and its metadata: an 'expire' record for each item
--   found expired, then one 'clear' record when live items were removed. A group found
--   expired as a whole is recorded first (its 'expire_group' record), and holds nothing then;
--   a group's expiry as a whole goes with it.
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua).
-- Returns the number of items removed that had not expired (never negative: expiry entries
--   left behind by another tool's HDEL count for nothing).
-- Keys touched: KEYS[1] (HLEN, HEXISTS, HGET, HDEL, EXISTS, UNLINK: memory is freed off the main
--   thread), KEYS[2] (HVALS, HGET, HDEL, UNLINK, then HSET and PEXPIRE of the floor), KEYS[3]
--   (XADD, XTRIM), KEYS[4] (EXISTS, ZRANGEBYSCORE, ZSCORE, ZREM, UNLINK), KEYS[7] (SREM);
--   PUBLISH (markers); and for a group that expires whole, what include/group.lua touches.
-- Cost: the expired items are purged one by one (as cleanup would), and the new floor is above
--   every stored version, so this reads them all (HVALS): linear in the number of expired
--   items and of items at version 2 or more.
local _, gx = group_load(KEYS, nil)  -- reads: before the checks is fine
acl_group(KEYS, true, true, gx)
acl_need('HLEN', KEYS[1])
acl_need('HVALS', KEYS[2])
acl_need('UNLINK', KEYS[1], KEYS[2], KEYS[4])
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group = ARGV[2]
  local now = now_ms()
  if gx then
    gx.open(feed, group, now)
  end
  if redis.call('EXISTS', KEYS[4]) == 1 then
    for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
      purge_expired(KEYS, field, group, feed, now, true)
    end
  end
  local n = redis.call('HLEN', KEYS[1])
  local highest = 0  -- the highest version of any item, or the floor, whichever is higher
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    highest = math.max(highest, tonumber(v) or 0)
  end
  if n > 0 then  -- an item without a recorded version has version 1
    highest = math.max(highest, 1)
  end
  local floor = n > 0 and next_version(highest, 0, false) or highest
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[4])
  raise_floor(KEYS, floor)
  if KEYS[7] then
    redis.call('SREM', KEYS[7], group)
  end
  if n > 0 then
    record(feed, KEYS[3], 'clear', group, '', floor, 0, false, false)
  end
  if gx then
    gx.close(group, now, false)
  end
  return feed_close(feed, n)
end)
