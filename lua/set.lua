-- set: write one item if its version matches: its next version, its expiry per the expiry
--   instruction, a change record (include/item.lua).
-- uses: clock status common ttl item
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] expected version ('' = any, '0' = must be absent), ARGV[5] expiry instruction (see
--   include/ttl.lua), ARGV[6] encoded value.
-- Returns {STATUS_OK, new_version} when written, {STATUS_CONFLICT, current_version} on a
--   version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HEXISTS, HGET, HSET), KEYS[2] (HGET, HSET or HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZADD or ZREM), KEYS[5] (SADD, SREM); PUBLISH
--   (markers).
local has = redis.call('EXISTS', KEYS[4]) == 1  -- a read: before the checks is fine
acl_group(KEYS, has, reaches_expiry(ARGV[5], has))
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, expected = ARGV[2], ARGV[3], ARGV[4]
  local now = has and now_ms()  -- else read only if an expiry is set (apply_expiry)
  -- the old value for the change record; the current version only for a condition
  local read = feed.values and 'value' or (expected ~= '' and 'version' or nil)
  local recorded, current, old = item_load(KEYS, group, field, feed, now, has, read)
  if expected ~= '' and tonumber(expected) ~= current then
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  local version = item_write(feed, KEYS, group, field, ARGV[6], recorded, ARGV[5], now, has,
    'set', old)
  return feed_close(feed, {STATUS_OK, version})
end)
