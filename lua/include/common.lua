-- common: permissions, the change feed and the bridge markers, for the write scripts.
-- Helpers in this folder go before the scripts that name them in a "-- uses:" line, in order
-- (the text stays constant; its SHA names it).
-- KEYS: none of its own; each helper receives the key it touches from its caller's KEYS.
-- ARGV: none of its own. The ARGV of every script that uses this file (every write script but
--   lease.lua) starts with the same head, built in one place in Python (RedisPlan._head in motia_state/backends/redis/plan.py):
--     ARGV[1] feed settings, for feed_open:
--       "<maxlen>:<max age ms or empty>:<1 to record values, else 0>:<p or s>:<marker channel>"
--       (s: the channel is sharded, SPUBLISH to a channel in the script's slot on Redis Cluster);
--     ARGV[2] group name ('' for a call across groups, which names its groups per op);
--     ARGV[3] item key ('' for a call on no single item);
--   then the script's own arguments. A group-scoped script's KEYS are its group's keys, in the
--   order include/ttl.lua describes.
-- Returns: nothing; defines local functions acl_require, acl_need, feed_parse, feed_open,
--   feed_batch, feed_guard, feed_close and record.
-- Keys touched: the change stream (XADD, XTRIM); PUBLISH or SPUBLISH on the marker channel.
--
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

-- The change feed. Every write script starts with feed_open and returns through
-- feed_close. Between them its keyspace notifications are bracketed by two messages on the
-- marker channel, '1' and '0', so the keyspace bridge (motia_state/bridge.py), which
-- receives notifications and markers on one connection in execution order, can tell the
-- engine's own writes from everyone else's. On Redis Cluster the channel is sharded, one
-- per slot (a cluster PUBLISH would travel to every node). Without a subscriber the '1' reaches nobody and
-- the closing '0' is skipped: one PUBLISH per call is the whole cost. feed.streams: the
-- streams a call wrote, kept only when the feed trims them by age (false otherwise).
local function feed_parse(spec)
  local maxlen, age, values, kind, channel = string.match(spec, '^(%d+):(%d*):([01]):([ps]):(.*)$')
  return {maxlen = maxlen, age = tonumber(age), values = values == '1', channel = channel,
    publish = kind == 's' and 'SPUBLISH' or 'PUBLISH', streams = age ~= '' and {} or false,
    bridged = false, batch = false}
end

-- For a script that records many changes: its XADDs skip the MAXLEN trim, and feed_close
-- trims each stream written once instead (an approximate trim checked on every XADD costs
-- a quarter of the XADD; within one atomic call nobody sees the stream longer meanwhile).
local function feed_batch(feed)
  feed.batch = true
  feed.streams = feed.streams or {}
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
  if feed.batch then
    for stream in pairs(feed.streams) do
      redis.call('XTRIM', stream, 'MAXLEN', '~', feed.maxlen)
    end
  end
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
  if feed.streams then
    feed.streams[stream] = true
  end
  if feed.batch then
    if feed.values then
      redis.call('XADD', stream, '*', 'op', op, 'group', group, 'key', key,
        'version', string.format('%d', version), 'prev', string.format('%d', prev),
        'value', value or '', 'old', old or '')
    else
      redis.call('XADD', stream, '*', 'op', op, 'group', group, 'key', key,
        'version', string.format('%d', version), 'prev', string.format('%d', prev))
    end
  elseif feed.values then
    redis.call('XADD', stream, 'MAXLEN', '~', feed.maxlen, '*',
      'op', op, 'group', group, 'key', key, 'version', string.format('%d', version),
      'prev', string.format('%d', prev), 'value', value or '', 'old', old or '')
  else
    redis.call('XADD', stream, 'MAXLEN', '~', feed.maxlen, '*',
      'op', op, 'group', group, 'key', key, 'version', string.format('%d', version),
      'prev', string.format('%d', prev))
  end
end
