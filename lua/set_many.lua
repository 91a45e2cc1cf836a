-- set_many: write a batch of items of one group unconditionally, each with its version bump
--   and change record, all in this one atomic call.
-- uses: clock common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] stream MAXLEN, ARGV[3] expiry instruction for every item,
--   ARGV[4], ARGV[5], ... item key, encoded value pairs (distinct keys; at most a few thousand
--   pairs, the caller chunks).
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET), KEYS[2] (HMGET, HSET, HDEL), KEYS[3] (XADD), KEYS[4] (ZSCORE,
--   ZADD, ZREM), KEYS[5] (SADD, SREM).
local n = (#ARGV - 3) / 2
local now = now_ms()
local has = redis.call('EXISTS', KEYS[4]) == 1
local fields = {}
for i = 1, n do
  fields[i] = ARGV[2 * i + 2]
  purge_expired(KEYS, fields[i], ARGV[1], ARGV[2], now, has)
end
local recorded = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, n do
  local version = write(KEYS[1], fields[i], ARGV[2 * i + 3], recorded[i])
  keep_version(KEYS[2], fields[i], version, recorded[i])
  apply_expiry(KEYS, fields[i], ARGV[1], ARGV[3], version == 1, now, has)
  record(KEYS[3], ARGV[2], 'set', ARGV[1], fields[i], version)
end
return n
