-- expiry: read, set or remove one item's expiry (ttl, expire, persist).
-- uses: clock common ttl item
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] 'get', 'persist', or a TTL in ms to set.
-- Returns for 'get': nil when the item is absent, else {expiry ms or false, now ms};
--   for 'persist': 1 when an expiry was removed, else 0; for a TTL: 1 when the item exists,
--   else 0. An item found expired is purged first (with its 'expire' record).
-- Keys touched: KEYS[1] (HEXISTS), KEYS[4] (ZSCORE, ZADD, ZREM), KEYS[5] (SADD, SREM); and
--   KEYS[1..3] when purging; PUBLISH (markers).
acl_group(KEYS, true, true)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, how = ARGV[2], ARGV[3], ARGV[4]
  local now = now_ms()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  purge_expired(KEYS, field, group, feed, now, has)
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    return feed_close(feed, how ~= 'get' and 0 or nil)
  end
  if how == 'get' then
    return feed_close(feed, {tonumber(redis.call('ZSCORE', KEYS[4], field)) or false, now})
  elseif how == 'persist' then
    local had = redis.call('ZSCORE', KEYS[4], field)
    drop_expiry(KEYS, field, group)
    return feed_close(feed, had and 1 or 0)
  end
  apply_expiry(KEYS, field, group, how, false, now, has)
  return feed_close(feed, 1)
end)
