-- set_many: write a batch of items of one group unconditionally, each with its next version,
--   expiry and change record (include/item.lua), all in this one atomic call.
-- uses: clock common ttl item group
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4] expiry instruction for every item (see include/ttl.lua), ARGV[5] group TTL in ms
--   ('' = none: see include/group.lua), ARGV[6], ARGV[7], ... item key, encoded value pairs (distinct keys; at most a few thousand pairs, the caller
--   chunks).
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET, HMGET), KEYS[2] (HMGET, HGET, HSET, HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZADD, ZREM), KEYS[7] (SADD, SREM); PUBLISH (markers); and for a group that expires whole, what
--   include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[5]))  -- reads: before the checks is fine
acl_group(KEYS, has, reaches_expiry(ARGV[4], has), gx)
acl_need('HMGET', KEYS[1], 'f')  -- after purging expired items
acl_need('HMGET', KEYS[2], 'f')
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, how, n = ARGV[2], ARGV[4], (#ARGV - 5) / 2
  -- the clock once for the whole batch, where an expiry is reachable (apply_expiry would
  -- otherwise read it for every item the batch gives one)
  local now = (gx or reaches_expiry(how, has)) and now_ms()
  if gx and gx.open(feed, group, now) then
    has = false
  end
  local fields = {}
  for i = 1, n do
    fields[i] = ARGV[2 * i + 4]
  end
  local recorded, olds = item_load_many(KEYS, group, fields, feed, now, has)
  local floor = group_floor(KEYS)  -- after the purges, the only removals here
  feed_batch(feed)
  for i = 1, n do
    item_write(feed, KEYS, group, fields[i], ARGV[2 * i + 5], recorded[i], how, now, has, 'set',
      olds[i], floor)
  end
  if gx then
    gx.close(group, now, true)
  end
  return feed_close(feed, n)
end)
