-- transaction: apply a list of set/delete/update ops across keys and groups, all or nothing,
--   and record the events its emit ops carry (the outbox) only if they apply.
-- uses: clock status common ttl item group numbers $codec update
-- KEYS: five per group, in group order: data hash, versions hash, change stream (on a
--   standalone server every group names the same stream), expiries, group deadline; then,
--   except on Cluster, the registry of group deadlines and the registry of groups with
--   expiries (include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] '', ARGV[3] '' (the head: include/common.lua; each op names
--   its group and key), ARGV[4] max encoded bytes of a value, ARGV[5] op count, then per group,
--   in group order, its group TTL in ms ('' = none: include/group.lua), then per op:
--   kind ('set', 'delete', 'update', 'emit'), group number (1-based), group name, item key
--   (emit: the topic), expected version ('' = any, '0' = must be absent; emit: ''), expiry
--   instruction (see include/ttl.lua; emit: ''), then set: the encoded value; delete: nothing;
--   update: what a missing item starts as, the change record's op name ('update' or
--   'increment'), the update ops (see include/update.lua); emit: the encoded data.
-- Ops see each other's effects in order. Conditions are checked against that running state;
-- if any fails, nothing is written. Each item is loaded, versioned and committed by the rules of
-- include/item.lua; its commit waits until every op has been checked. An emit touches no item:
-- its event is one record (op 'emit', the group, the topic as its key, versions '0', and
-- 'data', stored whatever record_values says) appended with the change records, in op order,
-- after the commit: events and changes share the stream in the order the ops were given.
-- Returns {STATUS_OK, result per op} where a result is the new version (set), the old value or
--   false (delete), {new_version, new_value_text} (update), the event's entry id (emit);
--   {STATUS_CONFLICT, {op, current_version, op, ...}} for every failed condition;
--   {STATUS_REFUSED, code, op, sub_op} when an update op cannot apply (include/status.lua).
-- An item that has expired is purged when first touched (with its 'expire' record) and is
--   absent to the ops; a group that has expired as a whole is recorded first (its
--   'expire_group' record) and is empty to them (an emit records it too, so its event comes
--   after). A group TTL slides its group's deadline only when the transaction applies; an
--   emit alone slides none.
-- Keys touched: every KEYS entry: data hashes (HGET, HSET, HDEL, EXISTS), versions hashes
--   (HGET, HSET, HDEL, PERSIST, PEXPIRE), change streams (XADD, XTRIM), expiries (EXISTS,
--   ZSCORE, ZADD, ZREM), group deadlines and their registry, registry (SADD, SREM); PUBLISH
--   (markers); and for a group that expires whole, what include/group.lua touches.
local standalone = #KEYS % 5 == 2
local deadlines, registry = standalone and KEYS[#KEYS - 1], standalone and KEYS[#KEYS]
local group_keys = {}  -- group number -> its KEYS table, as include/ttl.lua describes it
local grouped = {}     -- group number -> its expiry as a whole (include/group.lua)
for base = 0, #KEYS - 5, 5 do
  local g = #group_keys + 1
  local k = {KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5],
    deadlines or nil, registry or nil}
  local _, gx = group_load(k, tonumber(ARGV[5 + g]))
  acl_group(k, true, true, gx)
  group_keys[g], grouped[g] = k, gx
end
local feed, max_bytes = feed_open(ARGV[1]), tonumber(ARGV[4])

-- Appends an event to `stream` as include/common.lua's record appends a change (trimmed to the
-- feed's maxlen), with its data whatever record_values says: the data is the event. Returns its
-- entry id, the event's id.
local function emit(stream, group, topic, data)
  if feed.streams then
    feed.streams[stream] = true
  end
  return redis.call('XADD', stream, 'MAXLEN', '~', feed.maxlen, '*', 'op', 'emit',
    'group', group, 'key', topic, 'version', '0', 'prev', '0', 'data', data)
end
return feed_guard(feed, function()
  local now = now_ms()
  local names = {}  -- group number -> its name, from the first op that touches it
  local items = {}   -- id -> {g, k, group, key, exists, text, version, recorded, exp, touched}
  local floors = {}  -- group number -> its version floor as the ops leave it (loaded on need)
  local has = {}     -- group number -> whether it had expiries when the call began
  local order = {}   -- ids in first-touch order
  local records = {} -- {g, op name, group, key, version, prev, value, old}, in op order (an
                     -- emit's: {g, 'emit', group, topic, data, op number})
  local results = {}
  local conflicts = {}

  -- The group's first touch: records its expiry as a whole if that has passed.
  local function open(g, group)
    if has[g] == nil then
      names[g] = group
      local gx = grouped[g]
      has[g] = not (gx and gx.open(feed, group, now))
        and redis.call('EXISTS', group_keys[g][4]) == 1
    end
  end

  local function load(g, group, key)
    local id = g .. ':' .. key
    local item = items[id]
    if item == nil then
      local k = group_keys[g]
      open(g, group)
      local recorded, current, text = item_load(k, group, key, feed, now, has[g], 'value')
      item = {g = g, k = k, group = group, key = key, exists = current > 0, version = current,
        recorded = recorded, text = text or nil, exp = 'keep'}
      items[id] = item
      order[#order + 1] = id
    end
    return item
  end

  local function floor_at(g)
    if floors[g] == nil then
      floors[g] = group_floor(group_keys[g])
    end
    return floors[g]
  end

  -- next_version, with the group's floor as the ops leave it (read only for a new item).
  local function next_of(item)
    return next_version(item.version, item.exists and 0 or floor_at(item.g), item.recorded)
  end

  -- Each touched group's deadline, once its ops are done (slide: they applied).
  local function close_groups(slide)
    for g, group in pairs(names) do
      if grouped[g] then
        grouped[g].close(group, now, slide)
      end
    end
  end

  local at = 6 + #group_keys
  for op = 1, tonumber(ARGV[5]) do
    local kind, g, group, key, expected, how = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2],
      ARGV[at + 3], ARGV[at + 4], ARGV[at + 5]
    at = at + 6
    if kind == 'emit' then
      open(g, group)
      records[#records + 1] = {g, 'emit', group, key, ARGV[at], op}
      at = at + 1
    else
      local item = load(g, group, key)
      local existed = item.exists
      local ok = expected == '' or tonumber(expected) == item.version
      if not ok then
        conflicts[#conflicts + 1] = op
        conflicts[#conflicts + 1] = item.version
      end
      local prev, old = item.version, item.text
      if kind == 'set' then
        if ok then
          item.version = next_of(item)
          item.exists, item.text = true, ARGV[at]
          item.exp = expiry_of(how, not existed) or item.exp
          results[op] = item.version
          records[#records + 1] = {g, 'set', group, key, item.version, prev, item.text, old}
        end
        at = at + 1
      elseif kind == 'delete' then
        if ok then
          if item.exists then
            local version = next_of(item)
            results[op] = item.text
            floors[g] = math.max(floor_at(g), version)
            records[#records + 1] = {g, 'delete', group, key, version, prev, false, old}
            item.exists, item.text, item.version, item.exp = false, nil, 0, ''
          else
            results[op] = false
          end
        end
      elseif not ok then
        at = update_skip(ARGV, at + 2)
      else
        local start, name = ARGV[at], ARGV[at + 1]
        local applied, result, next_at = pcall(function()
          local parsed_ok, root = pcall(codec_parse, item.exists and item.text or start)
          if not parsed_ok then
            error({code = 'not_decodable', op = 0}, 0)
          end
          local new_root, after = update_apply(root, ARGV, at + 2)
          return codec_emit(new_root), after
        end)
        if not applied then
          if type(result) == 'table' then
            close_groups(false)
            return feed_close(feed, {STATUS_REFUSED, result.code, op, result.op})
          end
          error(result)
        end
        if #result > max_bytes then
          close_groups(false)
          return feed_close(feed, {STATUS_REFUSED, 'too_large', op, 0})
        end
        item.version = next_of(item)
        item.exists, item.text = true, result
        item.exp = expiry_of(how, not existed) or item.exp
        results[op] = {item.version, result}
        records[#records + 1] = {g, name, group, key, item.version, prev, result, old}
        at = next_at
      end
      if ok then
        item.touched = true
      end
    end
  end

  if #conflicts > 0 then
    close_groups(false)
    return feed_close(feed, {STATUS_CONFLICT, conflicts})
  end

  -- The commit (item.lua's rules, for the state the ops left each item in): item.exp is an
  -- instruction expiry_of has resolved already, so it applies as it is.
  for _, id in ipairs(order) do
    local item = items[id]
    if item.touched then
      if item.exists then
        redis.call('HSET', item.k[1], item.key, item.text)
        item_keep(item.k, item.group, item.key, item.version, item.recorded, item.exp, false, now,
          has[item.g])
      else
        item_drop(item.k, item.group, item.key, item.recorded, has[item.g])
      end
    end
  end
  for g, floor in pairs(floors) do
    local k = group_keys[g]
    raise_floor(k, floor)
    if floor > 0 and redis.call('EXISTS', k[1]) == 1 then
      redis.call('PERSIST', k[2])  -- the group has items: its floor must not expire
    end
  end
  for _, r in ipairs(records) do
    if r[2] == 'emit' then
      results[r[6]] = emit(group_keys[r[1]][3], r[3], r[4], r[5])
    else
      record(feed, group_keys[r[1]][3], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
    end
  end
  close_groups(true)
  local reply = {STATUS_OK}
  for op = 1, tonumber(ARGV[5]) do
    reply[op + 1] = results[op]
  end
  return feed_close(feed, reply)
end)
