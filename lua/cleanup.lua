-- cleanup: remove a bounded batch of one group's expired items, each with an 'expire' record.
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4] most items to remove in this call.
-- Returns {removed, 1 if more expired items remain else 0}. Atomic per batch, so sweepers
--   running at once never remove (or count) an item twice. A group found expired as a whole
--   is recorded first (its 'expire_group' record: include/group.lua), and holds nothing then.
-- Keys touched: KEYS[1..2] (HEXISTS, HGET, HSET, HDEL), KEYS[3] (XADD, XTRIM), KEYS[4]
--   (ZRANGEBYSCORE, ZREM, ZCOUNT), KEYS[7] (SREM); PUBLISH (markers); and for a group that
--   expires whole, what include/group.lua touches.
local _, gx = group_load(KEYS, nil)  -- reads: before the checks is fine
acl_group(KEYS, true, true, gx)
acl_need('ZCOUNT', KEYS[4], '-inf', '0')
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group = ARGV[2]
  local now = now_ms()
  if gx then
    gx.open(feed, group, now)
  end
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
  local removed = 0
  for _, field in ipairs(due) do
    if redis.call('HEXISTS', KEYS[1], field) == 1 then
      removed = removed + 1
    end
    purge_expired(KEYS, field, group, feed, now, true)
  end
  if KEYS[7] and redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('SREM', KEYS[7], group)
  end
  if gx then
    gx.close(group, now, false)
  end
  local more = redis.call('ZCOUNT', KEYS[4], '-inf', now) > 0 and 1 or 0
  return feed_close(feed, {removed, more})
end)
