-- ttl: expiry helpers for the write scripts. Needs clock.lua and common.lua before it.
-- Group-scoped scripts get KEYS [1] data hash, [2] versions hash, [3] change stream,
-- [4] expiries (a sorted set: item key -> expiry in ms since the epoch, by the server clock),
-- [5] the group's deadline (a string, while the group expires whole: include/group.lua),
-- [6] the registry of group deadlines (a sorted set: group -> deadline), [7] the registry of
-- groups that have expiries (a set): layout.group_keys in Python. [6] and [7] are not passed
-- on Redis Cluster, whose cleanup finds the expiry sets and deadlines by SCAN instead, and
-- where [3] is the group's own stream (on a standalone server every group shares it).
-- The helpers take that KEYS table as `k`, and `has`: whether the group had an expiry set
-- when the script began (most groups have none, and then no item can be expired and no
-- expiry needs clearing).
-- ARGV: none of its own.
-- Returns: nothing; defines local functions acl_group, reaches_expiry, drop_expiry, expiry_of,
--   apply_expiry.
-- Keys touched: k[4] (ZADD, ZREM, EXISTS), k[7] (SADD, SREM).

-- The commands that a write to a group can reach once it has started writing (the helpers
-- here, in common.lua and in item.lua), on the group's keys `k`; for acl_require in
-- common.lua. Its own first write may still be refused: that leaves nothing half-done.
-- Each check costs about what a small command does (2,000 instructions, a tenth of a plain
-- set's server time for the whole list), so the checks come in three parts: what every write
-- reaches; what only removing an item reaches (`removes`: a delete, or purging an expired
-- item, which only a group with expiries has); what only an expiry reaches (`expires`: see
-- reaches_expiry); what only a group that expires whole reaches (`grouped`: it has a deadline,
-- or the write gives it one: include/group.lua).
local function acl_write_checks(c, k)
  return c('HSET', k[1], 'f', 'v') and c('HSET', k[2], 'f', 'v') and c('HDEL', k[2], 'f')
    and c('HGET', k[2], 'f') and c('PERSIST', k[2])
    and c('XADD', k[3], '*', 'f', 'v') and c('XTRIM', k[3], 'MAXLEN', '1') and c('TIME')
end

local function acl_removal_checks(c, k)
  return c('HDEL', k[1], 'f') and c('HGET', k[1], 'f') and c('HEXISTS', k[1], 'f')
    and c('EXISTS', k[1], k[4]) and c('PEXPIRE', k[2], '1')
end

local function acl_expiry_checks(c, k)
  return c('ZADD', k[4], '1', 'f') and c('ZREM', k[4], 'f') and c('ZSCORE', k[4], 'f')
    and c('EXISTS', k[4]) and (not k[7] or (c('SADD', k[7], 'f') and c('SREM', k[7], 'f')))
end

-- The group's own stream (Cluster) expires with it; the shared one (standalone) never does.
local function acl_group_expiry_checks(c, k)
  local own = not k[6]
  return c('GET', k[5]) and c('EXISTS', k[1]) and c('PTTL', k[1])
    and c('PEXPIREAT', k[1], '1') and c('PEXPIREAT', k[2], '1') and c('PEXPIREAT', k[4], '1')
    and c('PERSIST', k[1]) and c('PERSIST', k[4])
    and c('SET', k[5], 'v', 'PXAT', '1') and c('DEL', k[5])
    and c('UNLINK', k[1], k[2], k[4])
    and (own or (c('ZADD', k[6], '1', 'f') and c('ZREM', k[6], 'f') and c('SREM', k[7], 'f')))
    and (not own or (c('PEXPIREAT', k[3], '1') and c('PEXPIRE', k[3], '1')
      and c('PERSIST', k[3]) and c('UNLINK', k[3])))
end

local function acl_group(k, removes, expires, grouped)
  acl_require(acl_write_checks, k)
  if removes then
    acl_require(acl_removal_checks, k)
  end
  if expires then
    acl_require(acl_expiry_checks, k)
  end
  if grouped then
    acl_require(acl_group_expiry_checks, k)
  end
end

-- Whether a write with expiry instruction `how` (below) to a group that `has` expiries can
-- reach the expiry commands: a group with expiries can drop one; otherwise only an
-- instruction that may set one ('<ms>' or 'keep:<ms>') touches them.
local function reaches_expiry(how, has)
  return has or (how ~= '' and how ~= 'keep')
end

local function drop_expiry(k, field, group)
  if redis.call('ZREM', k[4], field) == 1 and k[7] and redis.call('EXISTS', k[4]) == 0 then
    redis.call('SREM', k[7], group)
  end
end

-- Expiry instructions, as every write takes them: '' clears the item's expiry, '<ms>' sets it
-- to now + ms, 'keep' keeps it, 'keep:<ms>' keeps it but gives a new item now + ms (a default
-- TTL). expiry_of says what one instruction does to an item (created: the write creates it):
-- nil keeps its expiry, '' clears it, '<ms>' sets it.
local function expiry_of(how, created)
  if how == 'keep' then
    return nil
  elseif string.sub(how, 1, 5) == 'keep:' then
    return created and string.sub(how, 6) or nil
  end
  return how
end

-- Applies an expiry instruction after a write. `now`: the server time in ms, or false when
-- the caller has not read it (TIME costs what a small command does: most writes never need it).
local function apply_expiry(k, field, group, how, created, now, has)
  if how == 'keep' or (how == '' and not has) then  -- the common cases, without a call
    return
  end
  how = expiry_of(how, created)
  if how == nil or (how == '' and not has) then
    return
  end
  local ms = tonumber(how)
  if ms then
    redis.call('ZADD', k[4], (now or now_ms()) + ms, field)
    if k[7] then
      redis.call('SADD', k[7], group)
    end
  else
    drop_expiry(k, field, group)
  end
end
