-- group: a group that expires whole (a trace scope): one deadline for every key of the group,
--   set by expire_group or slid by the writes that carry a group TTL, and one 'expire_group'
--   change record once it has passed. Needs clock.lua, common.lua, ttl.lua before it.
-- KEYS: none of its own; the helpers take one group's KEYS table `k` as include/ttl.lua
--   describes it (k[5] the group's deadline, k[6] the registry of deadlines, absent on Cluster).
-- ARGV: none of its own.
-- Returns: nothing; defines GROUP_GRACE_MS and local function group_load, whose result has
--   the methods align, drop, open and close.
-- Keys touched: k[1], k[2], k[4] (PEXPIREAT, PERSIST, UNLINK, EXISTS), k[3] (XADD; on Cluster
--   also PEXPIREAT, PEXPIRE, PERSIST, UNLINK), k[5] (EXISTS, GET, SET PXAT, DEL), k[6] (ZADD,
--   ZREM), k[7] (SREM).
--
-- The deadline. Every key of the group (data hash, versions hash, expiries set, and on Cluster
-- its own change stream) is PEXPIREAT the deadline, so the server itself removes them together:
-- no read ever sees an expired group, and `redis-cli TTL <data hash>` shows the time left.
-- k[5] holds the deadline too, and outlives the group by GROUP_GRACE_MS: no script runs when
-- the server removes the keys, so the change record is written afterwards, by whichever comes
-- first, the sweeper (sweep_group.lua, from cleanup) or the group's next write (which must see
-- the group gone, and record that, before it starts the group anew). Either finds the passed
-- deadline in k[5] and deletes it in the same atomic call as the record: one expiry, one record.
-- Off Cluster the record goes to the shared stream. On Cluster it goes to the group's stream
-- (the group's own records went with the group), which then expires GROUP_GRACE_MS later,
-- and k[5] holds '-' for as long: a write that brings the group back before that keeps the
-- stream (PERSIST), as the record's stream would otherwise take the new records with it.
-- A group exists while its data hash does: the write that empties it drops its deadline.
-- The versions hash goes with the group: a group started anew after it expired starts at
-- version 1, as one whose version floor expired does (include/item.lua).
local GROUP_GRACE_MS = 7 * 24 * 3600 * 1000

-- Reads, before a write's ACL checks, whether the group has expiries (`has`, as ttl.lua takes
-- it) and what its expiry as a whole needs: false when it has no deadline and `ms` (the write's
-- group TTL, or nil) gives it none, the common case, in which nothing more is done; else `gx`,
-- {at = its deadline or false, tomb = whether k[5] holds '-', ms = ms or false} with the methods
-- below. One EXISTS tells both: a key named twice is counted twice. The methods are made only
-- here: a script's functions are made anew on every call, and most writes never need these.
local function group_load(k, ms)
  local n = redis.call('EXISTS', k[4], k[5], k[5])
  local gx
  if n >= 2 then
    local d = redis.call('GET', k[5]) or ''
    gx = {at = tonumber(d) or false, tomb = d == '-', ms = ms or false}
  elseif ms then
    gx = {at = false, tomb = false, ms = ms}
  else
    return n == 1, false
  end

  -- Gives every key of the group the deadline `at` (ms since the epoch).
  function gx.align(group, at)
    local when = string.format('%d', at)
    redis.call('PEXPIREAT', k[1], when)
    redis.call('PEXPIREAT', k[2], when)
    redis.call('PEXPIREAT', k[4], when)
    if k[6] then
      redis.call('ZADD', k[6], when, group)
    else
      redis.call('PEXPIREAT', k[3], when)
    end
    redis.call('SET', k[5], when, 'PXAT', string.format('%d', at + GROUP_GRACE_MS))
  end

  -- Forgets the group's deadline (its keys' own expiries are the caller's business).
  function gx.drop(group)
    redis.call('DEL', k[5])
    if k[6] then
      redis.call('ZREM', k[6], group)
    else
      redis.call('PERSIST', k[3])
    end
  end

  -- At the start of a write (after feed_open): if the deadline has passed by `now`, records the
  -- group's expiry: removes whatever of it the server has not removed yet and appends one
  -- 'expire_group' record (key '', versions 0). True if it did (the group is gone, expiries
  -- and all).
  function gx.open(feed, group, now)
    if not gx.at or gx.at > now then
      return false
    end
    redis.call('UNLINK', k[1], k[2], k[4])
    if k[6] then
      redis.call('ZREM', k[6], group)
      redis.call('SREM', k[7], group)
    else
      redis.call('UNLINK', k[3])
    end
    record(feed, k[3], 'expire_group', group, '', 0, 0, false, false)
    if k[6] then
      redis.call('DEL', k[5])
    else
      redis.call('PEXPIRE', k[3], GROUP_GRACE_MS)
      redis.call('SET', k[5], '-', 'PX', GROUP_GRACE_MS)
    end
    gx.at, gx.tomb = false, not k[6]
    return true
  end

  -- At the end of a write: the group keeps one deadline for all its keys, including any the
  -- write created; `slide`: the write went through, so a group TTL it carries moves the
  -- deadline to now + that TTL (a write its own condition refused slides nothing). A group
  -- the write left empty no longer exists, and its deadline goes.
  function gx.close(group, now, slide)
    if redis.call('EXISTS', k[1]) == 0 then
      if gx.at then
        gx.drop(group)
      end
      return
    end
    local at = slide and gx.ms and now + gx.ms or gx.at
    if at then
      gx.align(group, at)
    elseif gx.tomb then
      gx.drop(group)  -- back after its expiry was recorded: the stream stays
    end
  end

  return n % 2 == 1, gx
end
