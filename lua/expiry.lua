-- expiry: read, set or remove one item's expiry (ttl, expire, persist).
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] 'get', 'persist', or a TTL in ms to set, ARGV[5] group TTL in ms ('' = none: see
--   include/group.lua; '' for 'get', which slides nothing).
-- Returns for 'get': nil when the item is absent, else {expiry ms or false, now ms}, the
--   expiry being the earlier of the item's own and its group's (the data hash's PTTL, which
--   is the group's deadline, or whatever expiry another tool gave the hash); for 'persist':
--   1 when the item's own expiry was removed, else 0; for a TTL: 1 when the item exists, else
--   0. An item found expired is purged first (with its 'expire' record), a group found
--   expired recorded first (its 'expire_group' record).
-- Keys touched: KEYS[1] (HEXISTS, PTTL), KEYS[4] (ZSCORE, ZADD, ZREM), KEYS[7] (SADD, SREM);
--   and KEYS[1..3] when purging; PUBLISH (markers); and for a group that expires whole, what
--   include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[5]))  -- reads: before the checks is fine
acl_group(KEYS, true, true, gx)
acl_need('PTTL', KEYS[1])
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, how = ARGV[2], ARGV[3], ARGV[4]
  local now = now_ms()
  if gx and gx.open(feed, group, now) then
    has = false
  end
  purge_expired(KEYS, field, group, feed, now, has)
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    if gx then
      gx.close(group, now, how ~= 'get')
    end
    return feed_close(feed, how ~= 'get' and 0 or nil)
  end
  local reply = 1
  if how == 'get' then
    local at = tonumber(redis.call('ZSCORE', KEYS[4], field))
    local left = redis.call('PTTL', KEYS[1])
    if left >= 0 and (not at or now + left < at) then
      at = now + left
    end
    reply = {at or false, now}
  elseif how == 'persist' then
    reply = redis.call('ZSCORE', KEYS[4], field) and 1 or 0
    drop_expiry(KEYS, field, group)
  else
    apply_expiry(KEYS, field, group, how, false, now, has)
  end
  if gx then
    gx.close(group, now, how ~= 'get')
  end
  return feed_close(feed, reply)
end)
