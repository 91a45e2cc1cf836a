-- delete_many: remove a batch of items of one group, recording a change for each one removed.
-- uses: clock common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] feed settings (see include/common.lua), ARGV[3], ARGV[4], ...
--   item keys.
-- Returns the number of items that existed and were removed.
-- Keys touched: KEYS[1] (HEXISTS, HGET, HDEL), KEYS[2] (HGET, HSET, HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZREM), KEYS[5] (SREM); PUBLISH (markers).
local n = 0
acl_group(KEYS)
local feed = feed_open(ARGV[2])
return feed_guard(feed, function()
  local now = now_ms()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  for i = 3, #ARGV do
    local field = ARGV[i]
    purge_expired(KEYS, field, ARGV[1], feed, now, has)
    local current = current_version(KEYS[1], field, redis.call('HGET', KEYS[2], field))
    if current > 0 then
      local old = feed.values and redis.call('HGET', KEYS[1], field)
      redis.call('HDEL', KEYS[1], field)
      redis.call('HDEL', KEYS[2], field)
      raise_floor(KEYS[1], KEYS[2], current + 1)
      if has then
        drop_expiry(KEYS, field, ARGV[1])
      end
      record(feed, KEYS[3], 'delete', ARGV[1], field, current + 1, current, false, old)
      n = n + 1
    end
  end
  return feed_close(feed, n)
end)
