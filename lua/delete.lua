-- delete: remove one item if its version matches and return its value, record the change
--   (include/item.lua).
-- uses: clock status common ttl item
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] expected version ('' = any).
-- Returns {STATUS_OK, old_value} when deleted, {STATUS_OK} when there was nothing to delete,
--   {STATUS_CONFLICT, current_version} on a version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HGET, HEXISTS, HDEL, EXISTS), KEYS[2] (HGET, HSET, HDEL, PEXPIRE), KEYS[3] (XADD,
--   XTRIM), KEYS[4] (EXISTS, ZSCORE, ZREM), KEYS[5] (SREM); PUBLISH (markers).
local has = redis.call('EXISTS', KEYS[4]) == 1  -- a read: before the checks is fine
acl_group(KEYS, true, has)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, expected = ARGV[2], ARGV[3], ARGV[4]
  local recorded, current, old = item_load(KEYS, group, field, feed, has and now_ms(), has,
    'value')
  if expected ~= '' and tonumber(expected) ~= current then
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  if current == 0 then
    return feed_close(feed, {STATUS_OK})
  end
  item_remove(feed, KEYS, group, field, current, recorded, has, old, 'delete')
  return feed_close(feed, {STATUS_OK, old})
end)
