-- common: versions, the change feed and the bridge markers, for the write scripts.
-- Helpers in this folder go before the scripts that name them in a "-- uses:" line, in order
-- (the text stays constant; its SHA names it).
-- KEYS: none of its own; each helper receives the key it touches from its caller's KEYS.
-- ARGV: none of its own; a write script passes its feed settings ARGV to feed_open:
--   "<maxlen>:<max age ms or empty>:<1 to record values, else 0>:<p or s>:<marker channel>"
--   (s: the channel is sharded, SPUBLISH to a channel in the script's slot on Redis Cluster).
-- Returns: nothing; defines local functions acl_require, acl_need, current_version, first_version,
--   raise_floor, write, keep_version, feed_parse, feed_open, feed_guard, feed_close and
--   record.
-- Keys touched: the data hash (HEXISTS, HSET, EXISTS), the versions hash (HGET, HSET, HDEL,
--   PERSIST, PEXPIRE),
--   the change stream (XADD, XTRIM); PUBLISH or SPUBLISH on the marker channel.
--
-- Versions. Version 1 is never stored: an item with no entry in the versions hash has
-- version 1 (which is also what a value written by another tool gets). Most items are
-- written once, so this keeps the versions hash small and a create one command shorter.
-- Per item, versions only ever increase, across deletes and re-creates too: the versions
-- hash keeps, under the field '' (item keys are never empty), the group's *floor*, the
-- highest version a removed item of the group reached, and a new item starts above it.
-- So the floor costs nothing until the group first loses an item. Once a group is empty,
-- its versions hash holds only the floor; it then expires after FLOOR_TTL_MS unless the
-- group gets an item again, so groups used once (one per workflow run) leave nothing
-- behind: a group re-created after a week of being empty may start at version 1 again.
local FLOOR_TTL_MS = 7 * 24 * 3600 * 1000

-- Permissions. Redis does not roll back a script that fails midway, so a command the ACL
-- refuses after a script's first write would leave that write without its version, change
-- record or expiry. A write script therefore asks, before its first write, whether the user
-- may run every command it can reach after it, on the keys it will run them on
-- (redis.acl_check_cmd, Redis 7 and Valkey; EVALSHA has already checked KEYS against the
-- user's key patterns, and refuses the whole call otherwise). A refusal ends the script with
-- a NOPERM error naming the command, before anything was written. A list of checks is a
-- function of the checker, `function(c, ...) return c(cmd, args) and c(...) ... end`: the
-- plain chain is the fast path (about 0.09 us a check; a table of checks walked in a loop
-- would be built anew on every call and cost a third more), and only after a refusal is it
-- run again with a checker that names the refused command.
local acl_check = redis.acl_check_cmd

local function acl_naming(cmd, ...)
  if not acl_check(cmd, ...) then
    error({err = 'NOPERM this user has no permissions to run the ' .. string.lower(cmd)
      .. ' command on the keys this call needs (checked before writing: nothing was written)'})
  end
  return true
end

local function acl_require(checks, ...)
  if acl_check and not checks(acl_check, ...) then
    checks(acl_naming, ...)
  end
end

local function acl_need(cmd, ...)
  if acl_check then
    acl_naming(cmd, ...)
  end
end

-- The version of an item as the engine sees it, given the version recorded for it (a
-- string, or false when none): 0 when the field is absent, else the recorded version or 1.
local function current_version(data, field, recorded)
  if redis.call('HEXISTS', data, field) == 0 then
    return 0
  end
  return tonumber(recorded) or 1
end

-- The version a new item gets: above the group's floor, and above a version left behind by
-- someone else's HDEL of the item (recorded).
local function first_version(versions, recorded)
  local floor = tonumber(redis.call('HGET', versions, '')) or 0
  if floor > 0 then
    redis.call('PERSIST', versions)  -- the group is no longer empty
  end
  return math.max(floor, tonumber(recorded) or 0) + 1
end

-- Raises the group's floor to `version`, the version an item reached as it was removed;
-- once the group is empty, its floor starts to expire.
local function raise_floor(data, versions, version)
  if version > (tonumber(redis.call('HGET', versions, '')) or 0) then
    redis.call('HSET', versions, '', string.format('%d', version))
  end
  if redis.call('EXISTS', data) == 0 then
    redis.call('PEXPIRE', versions, FLOOR_TTL_MS)
  end
end

-- Writes a value unconditionally and returns the item's new and previous versions (0: it
-- did not exist), given the version recorded for it (a string, or false when none): HSET
-- itself says whether the field is new, which saves the HEXISTS that current_version needs.
local function write(data, versions, field, value, recorded)
  if redis.call('HSET', data, field, value) == 1 then
    return first_version(versions, recorded), 0
  end
  local prev = tonumber(recorded) or 1
  return prev + 1, prev
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

-- The change feed. Every write script starts with feed_open and returns through
-- feed_close. Between them its keyspace notifications are bracketed by two messages on the
-- marker channel, '1' and '0', so the keyspace bridge (motia_state/bridge.py), which
-- receives notifications and markers on one connection in execution order, can tell the
-- engine's own writes from everyone else's. On Redis Cluster the channel is sharded, one
-- per slot (a cluster PUBLISH would travel to every node). Without a subscriber the '1' reaches nobody and
-- the closing '0' is skipped: one PUBLISH per call is the whole cost.
local function feed_parse(spec)
  local maxlen, age, values, kind, channel = string.match(spec, '^(%d+):(%d*):([01]):([ps]):(.*)$')
  return {maxlen = maxlen, age = tonumber(age), values = values == '1', channel = channel,
    publish = kind == 's' and 'SPUBLISH' or 'PUBLISH', streams = {}, bridged = false}
end

local function feed_open(spec)
  local feed = feed_parse(spec)
  feed.bridged = redis.call(feed.publish, feed.channel, '1') > 0
  return feed
end

-- Runs a write script's body, `main`, after feed_open: should a command fail midway (a
-- WRONGTYPE key another tool wrote, say), the marker bracket is closed before the error goes
-- on, or the bridge would take every later edit by anyone else for the engine's own.
local function feed_guard(feed, main)
  local ok, reply = pcall(main)
  if ok then
    return reply
  end
  if feed.bridged then
    redis.call(feed.publish, feed.channel, '0')
  end
  error(reply, 0)
end

-- Ends a write script: trims the streams it wrote by age, closes the marker
-- bracket, and passes `reply` through.
local function feed_close(feed, reply)
  if feed.age then
    local t = redis.call('TIME')
    local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - feed.age
    for stream in pairs(feed.streams) do
      redis.call('XTRIM', stream, 'MINID', '~', string.format('%d', cutoff))
    end
  end
  if feed.bridged then
    redis.call(feed.publish, feed.channel, '0')
  end
  return reply
end

-- Appends one change record to the stream, trimmed approximately to the feed's maxlen.
-- The entry id carries the server time in milliseconds. prev is the version before the
-- change (0: the item did not exist); value and old are the encoded values after and
-- before it (false for none), stored only when the feed records values.
local function record(feed, stream, op, group, key, version, prev, value, old)
  feed.streams[stream] = true
  if feed.values then
    redis.call('XADD', stream, 'MAXLEN', '~', feed.maxlen, '*',
      'op', op, 'group', group, 'key', key, 'version', string.format('%d', version),
      'prev', string.format('%d', prev), 'value', value or '', 'old', old or '')
  else
    redis.call('XADD', stream, 'MAXLEN', '~', feed.maxlen, '*',
      'op', op, 'group', group, 'key', key, 'version', string.format('%d', version),
      'prev', string.format('%d', prev))
  end
end
