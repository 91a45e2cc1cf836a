-- set_many: write a batch of items of one group unconditionally, each with its version bump
--   and change record, all in this one atomic call.
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream.
-- ARGV[1] group name, ARGV[2] stream MAXLEN, ARGV[3], ARGV[4], ... item key, encoded value pairs.
-- Returns the number of items written.
-- Keys touched: KEYS[1] (HSET), KEYS[2] (HSET), KEYS[3] (XADD).
local n = 0
for i = 3, #ARGV, 2 do
  local field = ARGV[i]
  local version = current_version(KEYS[1], KEYS[2], field) + 1
  redis.call('HSET', KEYS[1], field, ARGV[i + 1])
  redis.call('HSET', KEYS[2], field, string.format('%d', version))
  record(KEYS[3], ARGV[2], 'set', ARGV[1], field, version)
  n = n + 1
end
return n
