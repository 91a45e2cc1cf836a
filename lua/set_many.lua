-- set_many: write a batch of items of one group unconditionally, each with its version bump
--   and change record, all in this one atomic call.
-- uses: clock common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] feed settings (see include/common.lua), ARGV[3] expiry
--   instruction for every item, ARGV[4], ARGV[5], ... item key, encoded value pairs (distinct
--   keys; at most a few thousand pairs, the caller chunks).
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET, HMGET), KEYS[2] (HMGET, HGET, HSET, HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZADD, ZREM), KEYS[5] (SADD, SREM); PUBLISH (markers).
local n = (#ARGV - 3) / 2
acl_group(KEYS)
acl_need('HMGET', KEYS[1], 'f')  -- after purging expired items
acl_need('HMGET', KEYS[2], 'f')
local feed = feed_open(ARGV[2])
return feed_guard(feed, function()
  local now = now_ms()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  local fields = {}
  for i = 1, n do
    fields[i] = ARGV[2 * i + 2]
    purge_expired(KEYS, fields[i], ARGV[1], feed, now, has)
  end
  local recorded = redis.call('HMGET', KEYS[2], unpack(fields))
  local olds = feed.values and redis.call('HMGET', KEYS[1], unpack(fields)) or {}
  for i = 1, n do
    local version, prev = write(KEYS[1], KEYS[2], fields[i], ARGV[2 * i + 3], recorded[i])
    keep_version(KEYS[2], fields[i], version, recorded[i])
    apply_expiry(KEYS, fields[i], ARGV[1], ARGV[3], prev == 0, now, has)
    record(feed, KEYS[3], 'set', ARGV[1], fields[i], version, prev, ARGV[2 * i + 3], olds[i])
  end
  return feed_close(feed, n)
end)
