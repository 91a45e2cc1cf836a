-- delete_many: remove a batch of items of one group, recording a change for each one removed
--   (include/item.lua).
-- uses: clock common ttl item
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4], ARGV[5], ... item keys.
-- Returns the number of items that existed and were removed.
-- Keys touched: KEYS[1] (HEXISTS, HGET, HDEL, EXISTS), KEYS[2] (HGET, HSET, HDEL, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZREM), KEYS[5] (SREM); PUBLISH (markers).
local has = redis.call('EXISTS', KEYS[4]) == 1  -- a read: before the checks is fine
acl_group(KEYS, true, has)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, n = ARGV[2], 0
  local now = has and now_ms()
  local read = feed.values and 'value' or 'version'  -- the old value only for the record
  for i = 4, #ARGV do
    local field = ARGV[i]
    local recorded, current, old = item_load(KEYS, group, field, feed, now, has, read)
    if current > 0 then
      item_remove(feed, KEYS, group, field, current, recorded, has, old, 'delete')
      n = n + 1
    end
  end
  return feed_close(feed, n)
end)
