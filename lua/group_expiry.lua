-- group_expiry: give a group one expiry as a whole, or remove it (expire_group, persist_group).
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4] the TTL in ms to give the group, or '' to remove its expiry.
-- Returns for a TTL: 1 when the group exists (it expires then), else 0; for '': 1 when the
--   group had an expiry (removed now), else 0. A group found expired is recorded first (its
--   'expire_group' record) and does not exist.
-- Keys touched: KEYS[1] (EXISTS, PERSIST), KEYS[2], KEYS[4] (PERSIST); PUBLISH (markers); and
--   what include/group.lua touches.
local ms = tonumber(ARGV[4])
local _, gx = group_load(KEYS, ms)  -- reads: before the checks is fine
acl_group(KEYS, false, false, true)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group = ARGV[2]
  local now = now_ms()
  if gx then
    gx.open(feed, group, now)
  end
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return feed_close(feed, 0)
  end
  if ms then
    gx.align(group, now + ms)  -- a TTL given: gx is there
    return feed_close(feed, 1)
  end
  -- an expiry another tool gave the hash counts: it is the one `redis-cli TTL` shows
  local had = redis.call('PERSIST', KEYS[1]) == 1
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[4])
  if gx and (gx.at or gx.tomb) then
    gx.drop(group)
  end
  return feed_close(feed, (had or (gx and gx.at)) and 1 or 0)
end)
