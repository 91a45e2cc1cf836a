-- delete: remove one item if its version matches and return its value, record the change
--   (include/item.lua).
-- uses: clock status common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] expected version ('' = any), ARGV[5] group TTL in ms ('' = none: see
--   include/group.lua).
-- Returns {STATUS_OK, old_value} when deleted, {STATUS_OK} when there was nothing to delete,
--   {STATUS_CONFLICT, current_version} on a version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HGET, HEXISTS, HDEL, EXISTS), KEYS[2] (HGET, HSET, HDEL, PEXPIRE), KEYS[3] (XADD,
--   XTRIM), KEYS[4] (EXISTS, ZSCORE, ZREM), KEYS[7] (SREM); PUBLISH (markers); and for a group
--   that expires whole, what include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[5]))  -- reads: before the checks is fine
acl_group(KEYS, true, has, gx)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, expected = ARGV[2], ARGV[3], ARGV[4]
  local now = (has or gx) and now_ms()
  if gx and gx.open(feed, group, now) then
    has = false
  end
  local recorded, current, old = item_load(KEYS, group, field, feed, now, has, 'value')
  if expected ~= '' and tonumber(expected) ~= current then
    if gx then
      gx.close(group, now, false)
    end
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  if current > 0 then
    item_remove(feed, KEYS, group, field, current, recorded, has, old, 'delete')
  end
  if gx then
    gx.close(group, now, true)
  end
  return feed_close(feed, current > 0 and {STATUS_OK, old} or {STATUS_OK})
end)
