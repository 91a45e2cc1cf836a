-- set: write one item if its version matches, bump its version, set or clear its expiry,
--   record the change.
-- uses: clock status common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] item key, ARGV[2] encoded value, ARGV[3] expected version ('' = any, '0' = must be
--   absent), ARGV[4] group name (for the change record), ARGV[5] feed settings (see
--   include/common.lua), ARGV[6] expiry instruction (see apply_expiry in include/ttl.lua).
-- Returns {STATUS_OK, new_version} when written, {STATUS_CONFLICT, current_version} on a
--   version mismatch (include/status.lua).
-- Keys touched: KEYS[1] (HEXISTS, HGET, HSET), KEYS[2] (HGET, HSET or HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZADD or ZREM), KEYS[5] (SADD, SREM); PUBLISH
--   (markers).
local field = ARGV[1]
acl_group(KEYS)
local feed = feed_open(ARGV[5])
return feed_guard(feed, function()
  local now = now_ms()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  purge_expired(KEYS, field, ARGV[4], feed, now, has)
  local recorded = redis.call('HGET', KEYS[2], field)
  local old = feed.values and redis.call('HGET', KEYS[1], field)
  local version, prev
  if ARGV[3] == '' then
    version, prev = write(KEYS[1], KEYS[2], field, ARGV[2], recorded)
  else
    prev = current_version(KEYS[1], field, recorded)
    if tonumber(ARGV[3]) ~= prev then
      return feed_close(feed, {STATUS_CONFLICT, prev})
    end
    redis.call('HSET', KEYS[1], field, ARGV[2])
    version = prev > 0 and prev + 1 or first_version(KEYS[2], recorded)
  end
  keep_version(KEYS[2], field, version, recorded)
  apply_expiry(KEYS, field, ARGV[4], ARGV[6], prev == 0, now, has)
  record(feed, KEYS[3], 'set', ARGV[4], field, version, prev, ARGV[2], old)
  return feed_close(feed, {STATUS_OK, version})
end)
