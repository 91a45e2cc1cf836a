-- common: helpers prepended to every script (the text stays constant; its SHA names it).
-- KEYS: none of its own; each helper receives the key it touches from its caller's KEYS.
-- ARGV: none of its own.
-- Returns: nothing; defines local functions current_version(data, versions, field),
--   write(data, field, value, recorded) and record(stream, maxlen, op, group, key, version).
-- Keys touched: the data hash (HEXISTS, HSET) and versions hash (HGET), the change stream (XADD).

-- The version of an item as the engine sees it: 0 when the field is absent; a field
-- written by someone else (redis-cli, Motia) without a version counts as version 1.
local function current_version(data, versions, field)
  if redis.call('HEXISTS', data, field) == 0 then
    return 0
  end
  return tonumber(redis.call('HGET', versions, field)) or 1
end

-- Writes a value unconditionally and returns the item's new version, given the version
-- recorded for it (a string, or false when none): HSET itself says whether the field is new,
-- which saves the HEXISTS that current_version needs.
local function write(data, field, value, recorded)
  if redis.call('HSET', data, field, value) == 1 then
    return 1
  end
  return (tonumber(recorded) or 1) + 1
end

-- Appends one change record to the stream, trimmed approximately to maxlen entries.
-- The entry id carries the server time in milliseconds.
local function record(stream, maxlen, op, group, key, version)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'op', op, 'group', group, 'key', key, 'version', string.format('%d', version))
end
