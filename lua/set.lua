-- set: write one item if its version matches, bump its version, set or clear its expiry,
--   record the change.
-- uses: clock common ttl
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] item key, ARGV[2] encoded value, ARGV[3] expected version ('' = any, '0' = must be
--   absent), ARGV[4] group name (for the change record), ARGV[5] stream MAXLEN (approximate),
--   ARGV[6] expiry instruction (see apply_expiry in include/ttl.lua).
-- Returns {1, new_version} when written, {0, current_version} on a version mismatch.
-- Keys touched: KEYS[1] (HEXISTS, HSET), KEYS[2] (HGET, HSET or HDEL), KEYS[3] (XADD),
--   KEYS[4] (EXISTS, ZSCORE, ZADD or ZREM), KEYS[5] (SADD, SREM).
local field = ARGV[1]
local now = now_ms()
local has = redis.call('EXISTS', KEYS[4]) == 1
purge_expired(KEYS, field, ARGV[4], ARGV[5], now, has)
local recorded = redis.call('HGET', KEYS[2], field)
local version
if ARGV[3] == '' then
  version = write(KEYS[1], field, ARGV[2], recorded)
else
  local current = current_version(KEYS[1], field, recorded)
  if tonumber(ARGV[3]) ~= current then
    return {0, current}
  end
  redis.call('HSET', KEYS[1], field, ARGV[2])
  version = current + 1
end
keep_version(KEYS[2], field, version, recorded)
apply_expiry(KEYS, field, ARGV[4], ARGV[6], version == 1, now, has)
record(KEYS[3], ARGV[5], 'set', ARGV[4], field, version)
return {1, version}
