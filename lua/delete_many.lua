-- delete_many: remove a batch of items of one group, recording a change for each one removed
--   (include/item.lua).
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4] group TTL in ms ('' = none: see include/group.lua), ARGV[5], ARGV[6], ... item
--   keys.
-- Returns the number of items that existed and were removed.
-- Keys touched: KEYS[1] (HEXISTS, HGET, HDEL, EXISTS), KEYS[2] (HGET, HSET, HDEL, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZREM), KEYS[7] (SREM); PUBLISH (markers); and for a group that expires whole, what
--   include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[4]))  -- reads: before the checks is fine
acl_group(KEYS, true, has, gx)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, n = ARGV[2], 0
  local now = (has or gx) and now_ms()
  if gx and gx.open(feed, group, now) then
    has = false
  end
  local read = feed.values and 'value' or 'version'  -- the old value only for the record
  for i = 5, #ARGV do
    local field = ARGV[i]
    local recorded, current, old = item_load(KEYS, group, field, feed, now, has, read)
    if current > 0 then
      item_remove(feed, KEYS, group, field, current, recorded, has, old, 'delete')
      n = n + 1
    end
  end
  if gx then
    gx.close(group, now, true)
  end
  return feed_close(feed, n)
end)
