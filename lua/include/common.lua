-- common: version and change-record helpers for the write scripts.
-- Helpers in this folder go before the scripts that name them in a "-- uses:" line, in order
-- (the text stays constant; its SHA names it).
-- KEYS: none of its own; each helper receives the key it touches from its caller's KEYS.
-- ARGV: none of its own.
-- Returns: nothing; defines local functions current_version(data, field, recorded),
--   write(data, field, value, recorded), keep_version(versions, field, version, recorded)
--   and record(stream, maxlen, op, group, key, version).
-- Keys touched: the data hash (HEXISTS, HSET), the versions hash (HGET, HSET, HDEL),
--   the change stream (XADD).
--
-- Version 1 is never stored: an item with no entry in the versions hash has version 1
-- (which is also what a value written by another tool gets). Most items are written
-- once, so this keeps the versions hash small and a create one command shorter.

-- The version of an item as the engine sees it, given the version recorded for it (a
-- string, or false when none): 0 when the field is absent, else the recorded version or 1.
local function current_version(data, field, recorded)
  if redis.call('HEXISTS', data, field) == 0 then
    return 0
  end
  return tonumber(recorded) or 1
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

-- Records the version an item now has: stored from 2 on; for 1, a stale entry left by
-- someone else's HDEL of the item (recorded ~= false) is removed.
local function keep_version(versions, field, version, recorded)
  if version > 1 then
    redis.call('HSET', versions, field, string.format('%d', version))
  elseif recorded then
    redis.call('HDEL', versions, field)
  end
end

-- Appends one change record to the stream, trimmed approximately to maxlen entries.
-- The entry id carries the server time in milliseconds.
local function record(stream, maxlen, op, group, key, version)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'op', op, 'group', group, 'key', key, 'version', string.format('%d', version))
end
