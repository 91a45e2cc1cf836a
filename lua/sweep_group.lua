-- sweep_group: record the expiry of a group whose deadline has passed (include/group.lua), for
--   cleanup; whatever of the group the server has not removed yet goes too.
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua).
-- Returns 1 when it recorded the group's expiry, else 0 (not due, or recorded already: the
--   deadline goes in the same atomic call as the record, so sweepers and writes running at
--   once record one expiry once).
-- Keys touched: KEYS[5] (EXISTS, GET), KEYS[6] (ZADD, ZREM: an entry whose deadline key is
--   gone, or out of step with it); PUBLISH (markers); and what include/group.lua touches.
local _, gx = group_load(KEYS, nil)  -- reads: before the checks is fine
acl_group(KEYS, false, false, true)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group = ARGV[2]
  if gx and gx.open(feed, group, now_ms()) then
    return feed_close(feed, 1)
  end
  if KEYS[6] then
    if gx and gx.at then
      redis.call('ZADD', KEYS[6], string.format('%d', gx.at), group)
    else  -- its deadline key expired unrecorded (no sweep for a week) or was removed
      redis.call('ZREM', KEYS[6], group)
    end
  end
  return feed_close(feed, 0)
end)
