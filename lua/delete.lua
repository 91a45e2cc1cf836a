-- delete: remove one item if its version matches and return its value, record the change.
-- uses: clock status common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] item key, ARGV[2] expected version ('' = any), ARGV[3] group name,
--   ARGV[4] feed settings (see include/common.lua).
-- Returns {STATUS_OK, old_value} when deleted, {STATUS_OK} when there was nothing to delete,
--   {STATUS_CONFLICT, current_version} on a version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HEXISTS, HGET, HDEL), KEYS[2] (HGET, HSET, HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZREM), KEYS[5] (SREM); PUBLISH (markers).
acl_group(KEYS)
local feed = feed_open(ARGV[4])
return feed_guard(feed, function()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  purge_expired(KEYS, ARGV[1], ARGV[3], feed, now_ms(), has)
  local current = current_version(KEYS[1], ARGV[1], redis.call('HGET', KEYS[2], ARGV[1]))
  if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  if current == 0 then
    return feed_close(feed, {STATUS_OK})
  end
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  raise_floor(KEYS[1], KEYS[2], current + 1)
  if has then
    drop_expiry(KEYS, ARGV[1], ARGV[3])
  end
  record(feed, KEYS[3], 'delete', ARGV[3], ARGV[1], current + 1, current, false, old)
  return feed_close(feed, {STATUS_OK, old})
end)
