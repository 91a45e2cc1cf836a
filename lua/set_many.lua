-- set_many: write a batch of items of one group unconditionally, each with its next version,
--   expiry and change record (include/item.lua), all in this one atomic call.
-- uses: clock common ttl item
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua),
--   ARGV[4] expiry instruction for every item (see include/ttl.lua), ARGV[5], ARGV[6], ...
--   item key, encoded value pairs (distinct keys; at most a few thousand pairs, the caller
--   chunks).
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET, HMGET), KEYS[2] (HMGET, HGET, HSET, HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZADD, ZREM), KEYS[5] (SADD, SREM); PUBLISH (markers).
local has = redis.call('EXISTS', KEYS[4]) == 1  -- a read: before the checks is fine
acl_group(KEYS, has, reaches_expiry(ARGV[4], has))
acl_need('HMGET', KEYS[1], 'f')  -- after purging expired items
acl_need('HMGET', KEYS[2], 'f')
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, how, n = ARGV[2], ARGV[4], (#ARGV - 4) / 2
  -- the clock once for the whole batch, where an expiry is reachable (apply_expiry would
  -- otherwise read it for every item the batch gives one)
  local now = reaches_expiry(how, has) and now_ms()
  local fields = {}
  for i = 1, n do
    fields[i] = ARGV[2 * i + 3]
  end
  local recorded, olds = item_load_many(KEYS, group, fields, feed, now, has)
  local floor = group_floor(KEYS)  -- after the purges, the only removals here
  feed_batch(feed)
  for i = 1, n do
    item_write(feed, KEYS, group, fields[i], ARGV[2 * i + 4], recorded[i], how, now, has, 'set',
      olds[i], floor)
  end
  return feed_close(feed, n)
end)
