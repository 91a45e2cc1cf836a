-- item: the one rule every write of an item follows, written once: load the item (purging it
--   first if it has expired) -> give it its next version (above the group's floor) -> commit it
--   (its value, its version, its expiry per the expiry instruction, a change record).
--   Needs clock.lua, common.lua and ttl.lua before it.
-- KEYS: none of its own; the helpers take one group's KEYS table `k` as include/ttl.lua
--   describes it, and `has`: whether the group had an expiry set when the script began.
-- ARGV: none of its own.
-- Returns: nothing; defines FLOOR_TTL_MS and local functions next_version, group_floor,
--   raise_floor, item_drop, item_remove, purge_expired, item_load, item_load_many, item_keep
--   and item_write.
-- Keys touched: k[1] (HGET, HMGET, HEXISTS, HSET, HDEL, EXISTS), k[2] (HGET, HMGET, HSET, HDEL,
--   PERSIST, PEXPIRE), k[3] (XADD), k[4] (ZSCORE, ZADD, ZREM, EXISTS), k[7] (SADD, SREM).
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

-- The version a change gives an item whose version was `prev` (0: it did not exist): one
-- more, also for a removal (the version the item reached as it went, which the group's floor
-- rises to); a new item starts above the group's `floor` and above a version left behind by
-- someone else's HDEL of the item (`recorded`: the version recorded for the item, a string,
-- or false when none).
local function next_version(prev, floor, recorded)
  if prev > 0 then
    return prev + 1
  end
  return math.max(floor, tonumber(recorded) or 0) + 1
end

local function group_floor(k)
  return tonumber(redis.call('HGET', k[2], '')) or 0
end

-- Raises the group's floor to `version`, the version an item reached as it was removed;
-- once the group is empty, its floor starts to expire.
local function raise_floor(k, version)
  if version > group_floor(k) then
    redis.call('HSET', k[2], '', string.format('%d', version))
  end
  if redis.call('EXISTS', k[1]) == 0 then
    redis.call('PEXPIRE', k[2], FLOOR_TTL_MS)
  end
end

-- Removes a stored item: its value, its recorded version (recorded: see next_version) and,
-- when the group has expiries, its expiry.
local function item_drop(k, group, field, recorded, has)
  redis.call('HDEL', k[1], field)
  if recorded then
    redis.call('HDEL', k[2], field)
  end
  if has then
    drop_expiry(k, field, group)
  end
end

-- Commits the removal of an item that had version `prev` (> 0): item_drop, the group's floor
-- raised to the item's next version, and an `op` change record ('delete' or 'expire') with
-- `old`, the value removed (false: none, or the feed does not record values).
local function item_remove(feed, k, group, field, prev, recorded, has, old, op)
  local version = next_version(prev, 0, recorded)
  item_drop(k, group, field, recorded, has)
  raise_floor(k, version)
  record(feed, k[3], op, group, field, version, prev, false, old)
end

-- Removes the item if its expiry has passed, with an 'expire' change record; true if it did.
-- Every write loads an item through here first (item_load), so an expired item is absent to
-- it (a new item in its place starts above the version the expired one reached).
local function purge_expired(k, field, group, feed, now, has)
  if not has then
    return false
  end
  local at = tonumber(redis.call('ZSCORE', k[4], field))
  if not at or at > now then
    return false
  end
  local recorded = redis.call('HGET', k[2], field)
  -- the value itself is read only when the feed records it
  local old = feed.values and redis.call('HGET', k[1], field)
    or redis.call('HEXISTS', k[1], field) == 1
  if not old then
    drop_expiry(k, field, group)  -- an expiry left behind by another tool's HDEL
    return true
  end
  item_remove(feed, k, group, field, tonumber(recorded) or 1, recorded, true,
    feed.values and old, 'expire')
  return true
end

-- Loads an item for a write: purges it if it has expired, then reads the version recorded for
-- it (a string, or false when none). `read` says what else the write needs: nil, nothing (a
-- blind write learns from its HSET whether the item is new: item_write); 'version', its
-- current version (0: absent); 'value', its current version and its stored value (false when
-- absent), in one HGET. Returns recorded, current, value.
local function item_load(k, group, field, feed, now, has, read)
  purge_expired(k, field, group, feed, now, has)
  local recorded = redis.call('HGET', k[2], field)
  if read == 'value' then
    local value = redis.call('HGET', k[1], field)
    return recorded, value and (tonumber(recorded) or 1) or 0, value
  elseif read == 'version' then
    return recorded, redis.call('HEXISTS', k[1], field) == 1 and (tonumber(recorded) or 1) or 0
  end
  return recorded
end

-- item_load for a batch of distinct items of one group, for blind writes: each one purged,
-- then their recorded versions in one HMGET, and their values in one more when the feed
-- records them (else an empty table). Returns recorded, values (both indexed as `fields`).
local function item_load_many(k, group, fields, feed, now, has)
  if has then  -- else nothing can have expired: no call per item
    for i = 1, #fields do
      purge_expired(k, fields[i], group, feed, now, has)
    end
  end
  local recorded = redis.call('HMGET', k[2], unpack(fields))
  return recorded, feed.values and redis.call('HMGET', k[1], unpack(fields)) or {}
end

-- Commits an item's version and expiry once its value is stored: the version is recorded from
-- 2 on (for 1, a stale entry left by someone else's HDEL, `recorded`, is removed), and the
-- expiry instruction `how` applied (created: the write created the item).
local function item_keep(k, group, field, version, recorded, how, created, now, has)
  if version > 1 then
    redis.call('HSET', k[2], field, string.format('%d', version))
  elseif recorded then
    redis.call('HDEL', k[2], field)
  end
  if how ~= 'keep' and (how ~= '' or has) then  -- apply_expiry's common no-ops, without a call
    apply_expiry(k, field, group, how, created, now, has)
  end
end

-- Writes `value` to an item loaded with item_load and commits it: its next version, item_keep
-- with the expiry instruction `how`, and an `op` change record ('set', 'update' or
-- 'increment') with `old`, the value replaced (false: none, or not read). HSET itself says
-- whether the item is new, which saves a blind write the HEXISTS of item_load's 'version'; a
-- new item's group is no longer empty, so its floor stops expiring. Returns the item's new
-- version and its previous one (0: it did not exist). `floor`: the group's floor when the
-- caller knows it (a batch reads it once), else nil: read here if the item is new.
local function item_write(feed, k, group, field, value, recorded, how, now, has, op, old, floor)
  local prev = tonumber(recorded) or 1
  if redis.call('HSET', k[1], field, value) == 1 then
    prev, floor = 0, floor or group_floor(k)
    if floor > 0 then
      redis.call('PERSIST', k[2])
    end
  end
  local version = next_version(prev, floor or 0, recorded)
  item_keep(k, group, field, version, recorded, how, prev == 0, now, has)
  record(feed, k[3], op, group, field, version, prev, value, old)
  return version, prev
end
