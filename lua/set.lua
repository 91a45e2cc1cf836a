-- set: write one item if its version matches: its next version, its expiry per the expiry
--   instruction, a change record (include/item.lua).
-- uses: clock status common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] expected version ('' = any, '0' = must be absent), ARGV[5] expiry instruction (see
--   include/ttl.lua), ARGV[6] encoded value, ARGV[7] group TTL in ms ('' = none: see
--   include/group.lua).
-- Returns {STATUS_OK, new_version} when written, {STATUS_CONFLICT, current_version} on a
--   version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HEXISTS, HGET, HSET), KEYS[2] (HGET, HSET or HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZADD or ZREM), KEYS[7] (SADD, SREM); PUBLISH
--   (markers); and for a group that expires whole, what include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[7]))  -- reads: before the checks is fine
acl_group(KEYS, has, reaches_expiry(ARGV[5], has), gx)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, expected = ARGV[2], ARGV[3], ARGV[4]
  local now = (has or gx) and now_ms()  -- else read only if an expiry is set (apply_expiry)
  if gx and gx.open(feed, group, now) then
    has = false
  end
  -- the old value for the change record; the current version only for a condition
  local read = feed.values and 'value' or (expected ~= '' and 'version' or nil)
  local recorded, current, old = item_load(KEYS, group, field, feed, now, has, read)
  if expected ~= '' and tonumber(expected) ~= current then
    if gx then
      gx.close(group, now, false)
    end
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  local version = item_write(feed, KEYS, group, field, ARGV[6], recorded, ARGV[5], now, has,
    'set', old)
  if gx then
    gx.close(group, now, true)
  end
  return feed_close(feed, {STATUS_OK, version})
end)
