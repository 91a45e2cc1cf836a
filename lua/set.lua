-- set: write one item if its version matches, bump its version, record the change.
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream.
-- ARGV[1] item key, ARGV[2] encoded value, ARGV[3] expected version ('' = any, '0' = must be
--   absent), ARGV[4] group name (for the change record), ARGV[5] stream MAXLEN (approximate).
-- Returns {1, new_version} when written, {0, current_version} on a version mismatch.
-- Keys touched: KEYS[1] (HSET), KEYS[2] (HSET), KEYS[3] (XADD).
local current = current_version(KEYS[1], KEYS[2], ARGV[1])
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= current then
  return {0, current}
end
local version = current + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', version))
record(KEYS[3], ARGV[5], 'set', ARGV[4], ARGV[1], version)
return {1, version}
