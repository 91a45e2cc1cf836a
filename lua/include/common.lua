-- common: helpers prepended to every script (the text stays constant; its SHA names it).
-- Other helpers in this folder go only before scripts that name them in a "-- uses:" line.
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

-- Expiry. Group-scoped scripts get KEYS [1] data hash, [2] versions hash, [3] change stream,
-- [4] expiries (a sorted set: item key -> expiry in ms since the epoch, by the server clock),
-- [5] the registry of groups that have expiries (a set; not passed on Redis Cluster, whose
-- cleanup finds the expiry sets by SCAN instead). The helpers take that KEYS table as `k`.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function drop_expiry(k, field, group)
  if redis.call('ZREM', k[4], field) == 1 and k[5] and redis.call('EXISTS', k[4]) == 0 then
    redis.call('SREM', k[5], group)
  end
end

-- Removes the item if its expiry has passed, with an 'expire' change record; true if it did.
-- Every write calls this first, so an expired item is absent to it (its version restarts).
local function purge_expired(k, field, group, maxlen, now)
  local at = tonumber(redis.call('ZSCORE', k[4], field))
  if not at or at > now then
    return false
  end
  local recorded = redis.call('HGET', k[2], field)
  local current = current_version(k[1], field, recorded)
  redis.call('HDEL', k[1], field)
  if recorded then
    redis.call('HDEL', k[2], field)
  end
  drop_expiry(k, field, group)
  if current > 0 then
    record(k[3], maxlen, 'expire', group, field, current + 1)
  end
  return true
end

-- Applies an expiry instruction after a write: '' clears the expiry, 'keep' keeps it, '<ms>'
-- sets it to now + ms, 'keep:<ms>' keeps it but gives a new item now + ms (a default TTL).
local function apply_expiry(k, field, group, how, created, now)
  if how == 'keep' then
    return
  end
  local ms
  if string.sub(how, 1, 5) == 'keep:' then
    if not created then
      return
    end
    ms = tonumber(string.sub(how, 6))
  elseif how ~= '' then
    ms = tonumber(how)
  end
  if ms then
    redis.call('ZADD', k[4], now + ms, field)
    if k[5] then
      redis.call('SADD', k[5], group)
    end
  else
    drop_expiry(k, field, group)
  end
end
