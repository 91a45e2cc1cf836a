-- set_many: write a batch of items of one group unconditionally, each with its version bump
--   and change record, all in this one atomic call.
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream.
-- ARGV[1] group name, ARGV[2] stream MAXLEN, ARGV[3], ARGV[4], ... item key, encoded value pairs
--   (distinct keys; at most a few thousand pairs, the caller chunks).
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET), KEYS[2] (HMGET, HSET, HDEL), KEYS[3] (XADD).
local n = (#ARGV - 2) / 2
local fields = {}
for i = 1, n do
  fields[i] = ARGV[2 * i + 1]
end
local recorded = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, n do
  local version = write(KEYS[1], fields[i], ARGV[2 * i + 2], recorded[i])
  keep_version(KEYS[2], fields[i], version, recorded[i])
  record(KEYS[3], ARGV[2], 'set', ARGV[1], fields[i], version)
end
return n
