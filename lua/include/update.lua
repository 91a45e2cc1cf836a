-- update: Motia v1's UpdateOps applied to a lossless value tree (see json.lua, msgpack.lua).
-- Needs a codec include before it: codec_parse, codec_key, codec_emit, codec_increment.
-- KEYS: none. ARGV: none of its own; update_apply reads the ops from the ARGV it is given.
-- Returns: nothing; defines local functions update_skip(argv, at) -> the index after the ops
--   that start at argv[at], and update_apply(root, argv, at) -> root, next index:
--   applies ops encoded from argv[at] on as: count, then per op: type ('set', 'increment',
--   'remove', 'merge', 'append'; a decrement arrives as an increment by the negated amount),
--   segment count, each segment as an encoded string, payload (the encoded value or amount,
--   or '' for remove). A failing op raises {code=..., op=index}; nothing is written then.
-- Keys touched: none.

local function upd_fail(code, op)
  error({code = code, op = op}, 0)
end

local function upd_object()
  return {k = 'o', keys = {}, raw = {}, vals = {}}
end

local function upd_put(obj, key, raw, node)
  if obj.vals[key] == nil then
    obj.keys[#obj.keys + 1] = key
    obj.raw[#obj.keys] = raw
  end
  obj.vals[key] = node
end

local function upd_remove(obj, key)
  if obj.vals[key] == nil then
    return
  end
  obj.vals[key] = nil
  for n, k in ipairs(obj.keys) do
    if k == key then
      table.remove(obj.keys, n)
      table.remove(obj.raw, n)
      return
    end
  end
end

local function upd_increment(node, by, op)
  if node.k ~= 'n' then
    upd_fail('not_number', op)
  end
  local sum, code = codec_increment(node, by)
  if not sum then
    upd_fail(code, op)
  end
  return sum
end

-- Applies one op whose target is `cur` (nil when absent); returns the new target (nil: removed).
local function upd_target(kind, cur, payload, op)
  if kind == 'set' then
    return codec_parse(payload)
  elseif kind == 'increment' then
    if cur == nil then
      return codec_parse(payload)
    end
    return upd_increment(cur, payload, op)
  elseif kind == 'merge' then
    local add = codec_parse(payload)
    if cur == nil then
      return add
    elseif cur.k ~= 'o' then
      upd_fail('not_object', op)
    end
    for n, key in ipairs(add.keys) do
      upd_put(cur, key, add.raw[n], add.vals[key])
    end
    return cur
  elseif kind == 'append' then
    local item = codec_parse(payload)
    if cur == nil then
      return {k = 'a', items = {item}}
    elseif cur.k ~= 'a' then
      upd_fail('not_array', op)
    end
    cur.items[#cur.items + 1] = item
    return cur
  end
  upd_fail('unknown_type', op)
end

local function update_skip(argv, at)
  local count = tonumber(argv[at])
  at = at + 1
  for _ = 1, count do
    at = at + 3 + tonumber(argv[at + 1])
  end
  return at
end

local function update_apply(root, argv, at)
  local count = tonumber(argv[at])
  at = at + 1
  for op = 1, count do
    local kind, nseg = argv[at], tonumber(argv[at + 1])
    local segs = {}
    for s = 1, nseg do
      segs[s] = argv[at + 1 + s]
    end
    local payload = argv[at + 2 + nseg]
    at = at + 3 + nseg
    if nseg == 0 then
      root = upd_target(kind, root, payload, op)
    else
      if root.k ~= 'o' then
        upd_fail('path_not_object', op)
      end
      local parent = root
      for s = 1, nseg - 1 do
        local key = codec_key(segs[s])
        local child = parent.vals[key]
        if child == nil then
          child = upd_object()
          upd_put(parent, key, segs[s], child)
        elseif child.k ~= 'o' then
          upd_fail('path_not_object', op)
        end
        parent = child
      end
      local key = codec_key(segs[nseg])
      if kind == 'remove' then
        upd_remove(parent, key)
      else
        upd_put(parent, key, segs[nseg], upd_target(kind, parent.vals[key], payload, op))
      end
    end
  end
  return root, at
end
