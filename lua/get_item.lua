-- get_item: read one item's value and version in one consistent snapshot. Read-only.
-- KEYS[1] data hash, KEYS[2] versions hash.
-- ARGV[1] item key.
-- Returns nil when absent, else {encoded_value, version} (version 1 when none is recorded,
--   as for values written by other tools).
-- Keys touched: KEYS[1] (HGET), KEYS[2] (HGET).
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return nil
end
return {value, tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 1}
