-- predicate: query predicates (issue 19) evaluated on stored values in place, without parsing
--   them whole. Needs numbers.lua and a codec include (json.lua or msgpack.lua) before it.
-- KEYS: none. ARGV: none of its own; pred_compile reads the tokens from the ARGV it is given.
-- Returns: nothing; defines local functions
--   pred_compile(argv, at, count) -> tree (nil when count is 0): the predicate whose `count`
--     tokens start at argv[at], in prefix order: 'and' n <n predicates>, 'or' n <n predicates>,
--     'not' <predicate>; eq neq gt gte lt lte contains notContains startsWith endsWith in: nseg,
--     the nseg path segments (strings encoded by the codec, as update.lua takes them), the
--     operand encoded by the codec ('in': an array); isNull isNotNull exists: nseg, segments.
--     Malformed tokens raise (the client never sends them).
--   pred_match(tree, value) -> true when the stored bytes `value` are a value the client's
--     codec can decode (pred_valid) and the predicate holds for it; never raises.
--   pred_valid(value) -> whether the client's codec decodes `value`: JsonCodec (orjson, else
--     Python's json.loads on strict UTF-8: NaN and Infinity allowed, ints of at most 4300
--     digits) or MsgpackCodec (msgpack-python, raw=False, strict_map_key: str or bin keys,
--     ext types 0..127 or a valid timestamp); at most 1024 nested containers.
-- Keys touched: none.
--
-- Semantics (query.py's `matches` is the reference). v is the value at the path (the whole
-- value for an empty one), MISSING when a segment meets a non-object or an absent key (a
-- duplicated key: its last value, as the decoders keep). eq: deep equality; numbers by exact
-- value (ints of any size as decimal text, floats as doubles, int against float exactly),
-- booleans are not numbers, strings by their decoded bytes, objects ignoring key order,
-- msgpack bin equals bin only, an ext an ext of the same type and bytes (no client sends one). neq: not eq. gt gte lt lte: two numbers, or two
-- strings by bytes (not Lua's `<`: strcoll follows the server's locale). contains: substring of
-- a string, or an element of an array equal to the operand; notContains: not contains.
-- startsWith endsWith: strings. in: v equals an element of the operand. isNull: MISSING or
-- null; isNotNull: not isNull; exists: not MISSING. and/or/not as in logic (and of none: true).
--
-- How: a value is only walked as far as the paths need (keys compared in place, other values
-- skipped with a find per bracket or string), scalars decoded where they are compared, and
-- containers decoded only where equality needs them. The walk trusts the text, so a value
-- for which the predicate holds is then validated whole (pred_valid): that costs the matches
-- only, and a value no client could read never matches. Decoded values are {kind, payload}:
-- 's' string bytes, 'b' bin bytes, 'i' canonical decimal text, 'f' double, 'N' null, 'T'
-- true, 'F' false, 'x' ext type and data bytes, 'a' {items}, 'o' {map, count}.

local pred_byte, pred_sub, pred_find = string.byte, string.sub, string.find
local pred_huge = math.huge

-- -1, 0 or 1: a against b, byte by byte.
local function pred_bytes_cmp(a, b)
  if a == b then
    return 0
  end
  local n = math.min(#a, #b)
  local i = 1
  while i <= n do
    local j = math.min(i + 15, n)
    if pred_sub(a, i, j) ~= pred_sub(b, i, j) then
      for k = i, j do
        local x, y = pred_byte(a, k), pred_byte(b, k)
        if x ~= y then
          return x < y and -1 or 1
        end
      end
    end
    i = j + 1
  end
  return #a < #b and -1 or 1
end

-- Two canonical decimal integers (no leading zeros, no '-0').
local function pred_int_cmp(a, b)
  if a == b then
    return 0
  end
  local na = pred_byte(a, 1) == 45
  if na ~= (pred_byte(b, 1) == 45) then
    return na and -1 or 1
  end
  local c
  if #a ~= #b then
    c = #a < #b and -1 or 1
  else
    c = pred_bytes_cmp(a, b)
  end
  return na and -c or c
end

-- A decimal integer against a double, exactly (nil against NaN).
local function pred_int_float_cmp(d, x)
  if x ~= x then
    return nil
  elseif #d <= 15 then  -- exact as a double, and doubles compare exactly
    local n = tonumber(d)
    return n < x and -1 or (n > x and 1 or 0)
  elseif x == pred_huge then
    return -1
  elseif x == -pred_huge then
    return 1
  end
  local f = math.floor(x)
  local t = string.format('%.0f', f)  -- an integral double, printed exactly
  local c = pred_int_cmp(d, t == '-0' and '0' or t)
  if c ~= 0 or f == x then
    return c
  end
  return -1  -- d is floor(x) < x
end

-- Two numbers ('i' or 'f'): -1, 0, 1, or nil when either is NaN.
local function pred_num_cmp(ta, a, tb, b)
  if ta == 'i' then
    if tb == 'i' then
      return pred_int_cmp(a, b)
    end
    return pred_int_float_cmp(a, b)
  elseif tb == 'i' then
    local c = pred_int_float_cmp(b, a)
    return c and -c
  end
  if a < b then
    return -1
  elseif a > b then
    return 1
  elseif a == b then
    return 0
  end
  return nil
end

local function pred_scalar_eq(ta, a, tb, b)
  if (ta == 'i' or ta == 'f') and (tb == 'i' or tb == 'f') then
    return pred_num_cmp(ta, a, tb, b) == 0
  end
  return ta == tb and a == b
end

local function pred_equal(a, b)
  local ta, tb = a[1], b[1]
  if ta == 'a' then
    if tb ~= 'a' then
      return false
    end
    local x, y = a[2], b[2]
    if #x ~= #y then
      return false
    end
    for n = 1, #x do
      if not pred_equal(x[n], y[n]) then
        return false
      end
    end
    return true
  elseif ta == 'o' then
    if tb ~= 'o' or a[3] ~= b[3] then
      return false
    end
    local other = b[2]
    for key, val in pairs(a[2]) do
      local o = other[key]
      if o == nil or not pred_equal(val, o) then
        return false
      end
    end
    return true
  elseif tb == 'a' or tb == 'o' then
    return false
  end
  return pred_scalar_eq(ta, a[2], tb, b[2])
end

-- Whether s[i..j] is UTF-8 as Python's strict decoder takes it (no surrogates, no overlongs).
-- Scans as far as the next byte past ASCII, whatever j: give it a substring when that matters.
-- (An anchored run of a plain range is several times quicker than an unanchored class search,
-- and than any class holding %z.)
local function pred_utf8(s, i, j)
  while true do
    local _, e = pred_find(s, '^[^\128-\255]*', i)
    local a = e + 1
    if a > j then
      return true
    end
    local b1, b2, b3, b4 = pred_byte(s, a, a + 3)
    local n, lo, hi = 0, 0x80, 0xBF
    if b1 >= 0xC2 and b1 <= 0xDF then
      n = 2
    elseif b1 >= 0xE0 and b1 <= 0xEF then
      n = 3
      if b1 == 0xE0 then
        lo = 0xA0
      elseif b1 == 0xED then
        hi = 0x9F
      end
    elseif b1 >= 0xF0 and b1 <= 0xF4 then
      n = 4
      if b1 == 0xF0 then
        lo = 0x90
      elseif b1 == 0xF4 then
        hi = 0x8F
      end
    end
    if n == 0 or a + n - 1 > j or not (b2 and b2 >= lo and b2 <= hi) then
      return false
    end
    if n >= 3 and not (b3 >= 0x80 and b3 <= 0xBF) then
      return false
    end
    if n == 4 and not (b4 >= 0x80 and b4 <= 0xBF) then
      return false
    end
    i = a + n
  end
end

-- The scanner of JSON text. Each scanner has: start(s) -> the root's index (before any other
-- call on s); member(s, i, seg, needle) -> the index of key seg's value in the object at i
-- (nil: not an object, or no such key; needle: needle(seg, 'whole')); scalar(s, i) -> kind,
-- payload (containers: their kind alone); is_null(s, i); decode(s, i, depth) -> decoded
-- value, index after it; valid(s); plain() -> whether s's strings are spelled as they decode;
-- needle(text, how) -> the bytes a plain s holds when it holds the string text ('whole'), a
-- string starting ('prefix') or ending ('suffix') with it, or text in a string ('part').
-- Walking text that is not JSON may raise: pred_match runs it under pcall.
local function pred_json_scanner()
  local bs = false  -- the text holds a backslash: strings may be escaped

  local function ws(s, i)
    local b = pred_byte(s, i)
    if b == 32 or b == 10 or b == 13 or b == 9 then
      local _, e = pred_find(s, '^[ \t\r\n]*', i)
      return e + 1
    end
    return i
  end

  local function str_end(s, i)  -- i at an opening quote: the index of the closing one
    if not bs then
      return pred_find(s, '"', i + 1, true) or error('unterminated string')
    end
    local j = i + 1
    while true do
      local a = pred_find(s, '["\\]', j)
      if not a then
        error('unterminated string')
      elseif pred_byte(s, a) == 34 then
        return a
      end
      j = a + 2
    end
  end

  local function skip(s, i)  -- i at a value: the index after it
    local b = pred_byte(s, i)
    if b == 34 then
      return str_end(s, i) + 1
    elseif b == 123 or b == 91 then
      local depth, j = 0, i
      while true do
        local a = pred_find(s, '[][{}"]', j)  -- ']' first: a member, not the end
        if not a then
          error('unterminated container')
        end
        local c = pred_byte(s, a)
        if c == 34 then
          j = str_end(s, a) + 1
        else
          depth = depth + ((c == 123 or c == 91) and 1 or -1)
          if depth == 0 then
            return a + 1
          end
          j = a + 1
        end
      end
    end
    local _, e = pred_find(s, '^[-+.0-9A-Za-z]+', i)  -- a number or literal
    return e + 1
  end

  local function key_at(s, i, e)  -- the decoded text of the string s[i..e]
    if bs then
      return codec_key(pred_sub(s, i, e))
    end
    return pred_sub(s, i + 1, e - 1)
  end

  local function member(s, i, seg, quoted)
    if pred_byte(s, i) ~= 123 then
      return nil
    end
    if not bs then
      -- Without escapes the key is spelled `quoted`, and every quote opens or closes a
      -- string. Its first spelling p is this object's key when no bracket comes before it,
      -- an even number of quotes do (p opens a string), and a colon follows; the last one
      -- is, when it is the only one left.
      local p = pred_find(s, quoted, i + 1, true)
      if not p then
        return nil
      end
      local _, e = pred_find(s, '^[^][{}]*', i + 1)
      local q = p + #quoted
      if e >= p and pred_byte(s, q) == 58
          and select(2, string.gsub(pred_sub(s, i + 1, p - 1), '"', '')) % 2 == 0 then
        q = ws(s, q + 1)
        if not pred_find(s, quoted, q, true) then
          return q
        end
      end
    end
    local found, n = nil, #seg
    i = ws(s, i + 1)
    if pred_byte(s, i) == 125 then
      return nil
    end
    while true do
      if pred_byte(s, i) ~= 34 then
        error('object key expected')
      end
      local e = str_end(s, i)
      local hit
      if bs then
        hit = key_at(s, i, e) == seg
      else
        hit = e - i - 1 == n and pred_sub(s, i + 1, e - 1) == seg
      end
      i = ws(s, e + 1)
      if pred_byte(s, i) ~= 58 then
        error('colon expected')
      end
      i = ws(s, i + 1)
      if hit then
        found = i
        -- Without escapes a later duplicate of the key is spelled `quoted`: none, no more.
        if not bs and not pred_find(s, quoted, i, true) then
          return found
        end
      end
      i = ws(s, skip(s, i))
      local c = pred_byte(s, i)
      if c == 125 then
        return found
      elseif c ~= 44 then
        error(', or } expected')
      end
      i = ws(s, i + 1)
    end
  end

  local function scalar(s, i)
    local b = pred_byte(s, i)
    if b == 34 then
      return 's', key_at(s, i, str_end(s, i))
    elseif b == 123 then
      return 'o'
    elseif b == 91 then
      return 'a'
    elseif b == 116 then
      return 'T'
    elseif b == 102 then
      return 'F'
    elseif b == 110 then
      return 'N'
    elseif b == 78 then
      return 'f', 0 / 0  -- NaN
    elseif b == 73 then
      return 'f', pred_huge  -- Infinity
    elseif b == 45 and pred_byte(s, i + 1) == 73 then
      return 'f', -pred_huge
    end
    local text = string.match(s, '^-?%d[%d.eE+-]*', i)
    if pred_find(text, '[.eE]') then
      return 'f', tonumber(text) or error('not a number')
    elseif text == '-0' then
      return 'i', '0'
    end
    return 'i', text
  end

  local function decode(s, i, depth)
    local b = pred_byte(s, i)
    if b == 123 or b == 91 then
      if depth > 1024 then
        error('nests too deeply')
      end
      local close, out, count = b + 2, {}, 0  -- '}' is '{' + 2, ']' is '[' + 2
      i = ws(s, i + 1)
      if pred_byte(s, i) ~= close then
        while true do
          if b == 123 then
            local e = str_end(s, i)
            local key = key_at(s, i, e)
            i = ws(s, e + 1)
            if pred_byte(s, i) ~= 58 then
              error('colon expected')
            end
            local val
            val, i = decode(s, ws(s, i + 1), depth + 1)
            if out[key] == nil then
              count = count + 1
            end
            out[key] = val
          else
            count = count + 1
            out[count], i = decode(s, i, depth + 1)
          end
          i = ws(s, i)
          local c = pred_byte(s, i)
          if c == close then
            break
          elseif c ~= 44 then
            error(', expected')
          end
          i = ws(s, i + 1)
        end
      end
      if b == 123 then
        return {'o', out, count}, i + 1
      end
      return {'a', out}, i + 1
    end
    local t, v = scalar(s, i)
    return {t, v}, skip(s, i)
  end

  -- The strict grammar, returning the index after the value or nil. `cc`: the index of the
  -- next control character at or after where the walk is (nil: none left), moved on only
  -- forward, so that a string without escapes is checked by one plain find.
  local cc

  local function v_string(s, i)
    if not bs then
      local e = pred_find(s, '"', i + 1, true)
      if not e then
        return nil
      end
      if cc and cc < i then
        cc = pred_find(s, '[%z\1-\31]', i)
      end
      if cc and cc < e then
        return nil  -- a control character in the string
      end
      return e + 1
    end
    local j = i + 1
    while true do
      local a = pred_find(s, '[%z\1-\31"\\]', j)
      if not a then
        return nil
      end
      local c = pred_byte(s, a)
      if c == 34 then
        return a + 1
      elseif c ~= 92 then
        return nil  -- a control character
      end
      local e = pred_byte(s, a + 1)
      if e == 117 then
        if not pred_find(s, '^%x%x%x%x', a + 2) then
          return nil
        end
        j = a + 6
      elseif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114
          or e == 116 then
        j = a + 2
      else
        return nil
      end
    end
  end

  local literals = {[116] = 'true', [102] = 'false', [110] = 'null', [78] = 'NaN',
    [73] = 'Infinity'}

  local function v_number(s, i)
    local j, b = i, pred_byte(s, i)
    if b == 45 then
      if pred_sub(s, i + 1, i + 8) == 'Infinity' then
        return i + 9
      end
      j = i + 1
      b = pred_byte(s, j)
    end
    if b == 48 then
      j = j + 1
    elseif b and b >= 49 and b <= 57 then
      local _, e = pred_find(s, '^%d*', j + 1)
      j = e + 1
    else
      return nil
    end
    local int_end = j
    b = pred_byte(s, j)
    if b == 46 then
      local _, e = pred_find(s, '^%d+', j + 1)
      if not e then
        return nil
      end
      j = e + 1
      b = pred_byte(s, j)
    end
    if b == 101 or b == 69 then
      local _, e = pred_find(s, '^[-+]?%d+', j + 1)
      if not e then
        return nil
      end
      j = e + 1
    end
    if j == int_end and j - i - (pred_byte(s, i) == 45 and 1 or 0) > 4300 then
      return nil  -- Python's int() refuses more digits
    end
    return j
  end

  local function v_value(s, i, depth)
    local b = pred_byte(s, i)
    if b == 123 or b == 91 then
      if depth > 1024 then
        return nil
      end
      local close = b + 2
      i = ws(s, i + 1)
      if pred_byte(s, i) == close then
        return i + 1
      end
      while true do
        if b == 123 then
          if pred_byte(s, i) ~= 34 then
            return nil
          end
          i = v_string(s, i)
          if not i then
            return nil
          end
          if pred_byte(s, i) ~= 58 then
            i = ws(s, i)
            if pred_byte(s, i) ~= 58 then
              return nil
            end
          end
          i = ws(s, i + 1)
        end
        i = v_value(s, i, depth + 1)
        if not i then
          return nil
        end
        local c = pred_byte(s, i)
        if c ~= 44 and c ~= close then
          i = ws(s, i)
          c = pred_byte(s, i)
        end
        if c == close then
          return i + 1
        elseif c ~= 44 then
          return nil
        end
        i = ws(s, i + 1)
      end
    elseif b == 34 then
      return v_string(s, i)
    end
    local lit = literals[b]
    if lit then
      return pred_sub(s, i, i + #lit - 1) == lit and i + #lit or nil
    end
    return v_number(s, i)
  end

  local function valid(s)
    local _, e = pred_find(s, '^[\32-\127]*')  -- a quick class (see pred_utf8)
    cc = nil
    if e < #s then  -- a control character or a byte past ASCII
      if not pred_utf8(s, e + 1, #s) then
        return false
      end
      _, e = pred_find(s, '^[\32-\255]*', e + 1)
      cc = e < #s and e + 1 or nil
    end
    bs = pred_find(s, '\\', 1, true) ~= nil
    local i = v_value(s, ws(s, 1), 1)
    return i ~= nil and ws(s, i) > #s
  end

  local function start(s)
    bs = pred_find(s, '\\', 1, true) ~= nil
    return ws(s, 1)
  end

  local function is_null(s, i)
    return pred_byte(s, i) == 110
  end

  local function plain()
    return not bs
  end

  local function needle(text, how)
    if how == 'whole' then
      return '"' .. text .. '"'
    elseif how == 'prefix' then
      return '"' .. text
    elseif how == 'suffix' then
      return text .. '"'
    end
    return text
  end

  return {start = start, member = member, scalar = scalar, is_null = is_null, decode = decode,
    valid = valid, plain = plain, needle = needle, json = true}
end

-- The scanner of msgpack bytes (the interface of pred_json_scanner's). Numbers go through
-- msgpack.lua's mp_number.
local function pred_msgpack_scanner()
  local function uint(s, i, n)  -- n <= 4 bytes, big-endian
    local v = 0
    for j = i, i + n - 1 do
      v = v * 256 + pred_byte(s, j)
    end
    return v
  end

  local fixed = {[0xca] = 4, [0xcb] = 8, [0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8,
    [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8}
  local fixext = {[0xd4] = 1, [0xd5] = 2, [0xd6] = 4, [0xd7] = 8, [0xd8] = 16}

  -- The value at i: 'o'/'a', element count, index of the first element; or a scalar's kind
  -- ('n' number, 'l' nil/false/true, 's' str, 'b' bin, 'x' ext), the first and last index
  -- of its payload (a number or literal: of the whole value; an ext: of its data).
  local function head(s, i)
    local b = pred_byte(s, i)
    if not b then
      error('truncated')
    elseif b <= 0x7f or b >= 0xe0 then
      return 'n', i, i
    elseif b <= 0x8f then
      return 'o', b - 0x80, i + 1
    elseif b <= 0x9f then
      return 'a', b - 0x90, i + 1
    elseif b <= 0xbf then
      return 's', i + 1, i + b - 0xa0
    elseif b == 0xc0 or b == 0xc2 or b == 0xc3 then
      return 'l', i, i
    end
    local w = fixed[b]
    if w then
      return 'n', i, i + w
    elseif b >= 0xd9 and b <= 0xdb then
      w = 2 ^ (b - 0xd9)
      return 's', i + 1 + w, i + w + uint(s, i + 1, w)
    elseif b >= 0xc4 and b <= 0xc6 then
      w = 2 ^ (b - 0xc4)
      return 'b', i + 1 + w, i + w + uint(s, i + 1, w)
    elseif b >= 0xc7 and b <= 0xc9 then
      w = 2 ^ (b - 0xc7)
      return 'x', i + 2 + w, i + 1 + w + uint(s, i + 1, w)
    end
    w = fixext[b]
    if w then
      return 'x', i + 2, i + 1 + w
    elseif b == 0xdc or b == 0xdd then
      w = b == 0xdc and 2 or 4
      return 'a', uint(s, i + 1, w), i + 1 + w
    elseif b == 0xde or b == 0xdf then
      w = b == 0xde and 2 or 4
      return 'o', uint(s, i + 1, w), i + 1 + w
    end
    error('not msgpack')
  end

  local function skip(s, i)
    local pending = 1
    repeat
      local k, a, b = head(s, i)
      pending = pending - 1
      if k == 'o' then
        pending, i = pending + 2 * a, b
      elseif k == 'a' then
        pending, i = pending + a, b
      else
        i = b + 1
      end
    until pending == 0
    return i
  end

  local function member(s, i, seg, needle)
    local k, count, j = head(s, i)
    if k ~= 'o' then
      return nil
    end
    local found, n = nil, #seg
    for _ = 1, count do
      local kk, a, b = head(s, j)
      local hit = kk == 's' and b - a + 1 == n and pred_sub(s, a, b) == seg
      j = (kk == 'o' or kk == 'a') and skip(s, j) or b + 1
      if hit then
        found = j
        if not pred_find(s, needle, j, true) then  -- no later key can repeat it: done
          return found
        end
      end
      j = skip(s, j)
    end
    return found
  end

  local function scalar(s, i)
    local k, a, b = head(s, i)
    if k == 's' then
      return 's', pred_sub(s, a, b)
    elseif k == 'n' then
      local c = pred_byte(s, i)
      if c <= 0x7f then
        return 'i', tostring(c)
      end
      local t, v = mp_number(pred_sub(s, a, b))
      return t == 'int' and 'i' or 'f', v
    elseif k == 'l' then
      local c = pred_byte(s, i)
      return c == 0xc0 and 'N' or (c == 0xc3 and 'T' or 'F')
    elseif k == 'b' then
      return 'b', pred_sub(s, a, b)
    elseif k == 'x' then
      return 'x', pred_sub(s, a - 1, b)  -- its type and data
    end
    return k  -- 'o', 'a'
  end

  local function decode(s, i, depth)
    local k, a, b = head(s, i)
    if k == 'o' or k == 'a' then
      if depth > 1024 then
        error('nests too deeply')
      end
      local out, count, j = {}, 0, b
      for _ = 1, a do
        if k == 'o' then
          local kk, ka, kb = head(s, j)
          local key = pred_sub(s, ka, kb)
          if kk == 'b' then
            key = '\255b' .. key  -- apart from every str key (those are UTF-8)
          elseif kk ~= 's' then
            key = '\255?' .. j  -- refused by pred_valid; kept apart from every other key
          end
          j = (kk == 'o' or kk == 'a') and skip(s, j) or kb + 1
          local val
          val, j = decode(s, j, depth + 1)
          if out[key] == nil then
            count = count + 1
          end
          out[key] = val
        else
          count = count + 1
          out[count], j = decode(s, j, depth + 1)
        end
      end
      if k == 'o' then
        return {'o', out, count}, j
      end
      return {'a', out}, j
    end
    local t, v = scalar(s, i)
    return {t, v}, b + 1
  end

  local wide = false  -- the value being checked holds a byte past ASCII

  local function check(s, i, depth)  -- raises unless msgpack-python reads the value at i
    local k, a, b = head(s, i)
    if k == 'o' or k == 'a' then
      if depth > 1024 then
        error('nests too deeply')
      end
      local j = b
      for _ = 1, a do
        if k == 'o' then
          local kk = head(s, j)
          if kk ~= 's' and kk ~= 'b' then
            error('map key not str or bin')
          end
          j = check(s, j, depth + 1)
        end
        j = check(s, j, depth + 1)
      end
      return j
    elseif b > #s then
      error('truncated')
    elseif k == 's' and wide and b >= a and not pred_utf8(pred_sub(s, a, b), 1, b - a + 1) then
      error('str not UTF-8')
    elseif k == 'x' and pred_byte(s, a - 1) >= 0x80 then  -- a reserved type: -1 alone
      local n = b - a + 1
      if pred_byte(s, a - 1) ~= 0xff then
        error('ext type reserved')  -- msgpack-python's ExtType takes 0..127
      end
      if n == 8 and uint(s, a, 4) >= 4 * 1000000000 or n == 12 and uint(s, a, 4) > 999999999 then
        error('timestamp nanoseconds')
      elseif n ~= 4 and n ~= 8 and n ~= 12 then
        error('timestamp length')
      end
    end
    return b + 1
  end

  local function valid(s)
    local _, e = pred_find(s, '^[^\128-\255]*')
    wide = e < #s  -- some byte past ASCII: check each str
    local ok, j = pcall(check, s, 1, 1)
    return ok and j == #s + 1
  end

  local function start()
    return 1
  end

  local function is_null(s, i)
    return pred_byte(s, i) == 0xc0
  end

  local function plain()
    return true
  end

  local function needle(text)
    return text
  end

  return {start = start, member = member, scalar = scalar, is_null = is_null, decode = decode,
    valid = valid, plain = plain, needle = needle}
end

-- JSON's parser reads '[]'; msgpack's refuses it (']' trails the fixint '[').
local pred_scan = pcall(codec_parse, '[]') and pred_json_scanner() or pred_msgpack_scanner()
local pred_valid = pred_scan.valid

local PRED_OPERAND = {eq = true, neq = true, gt = true, gte = true, lt = true, lte = true,
  contains = true, notContains = true, startsWith = true, endsWith = true, ['in'] = true}
local PRED_PATH = {isNull = true, isNotNull = true, exists = true}

-- A token (a path segment or an operand) decoded whole; raises unless it is one value.
local function pred_token(text)
  local d, after = pred_scan.decode(text, pred_scan.start(text), 1)
  local rest = pred_sub(text, after)
  if rest ~= '' and not (pred_scan.json and pred_find(rest, '^[ \t\r\n]*$')) then
    error('a token holds more than one value')
  end
  return d
end

local function pred_node(argv, at)
  local op = argv[at]
  if op == 'and' or op == 'or' then
    local kids, n = {}, tonumber(argv[at + 1])
    at = at + 2
    for k = 1, n do
      kids[k], at = pred_node(argv, at)
    end
    return {op = op, kids = kids}, at
  elseif op == 'not' then
    local kid
    kid, at = pred_node(argv, at + 1)
    return {op = op, kid = kid}, at
  elseif not PRED_OPERAND[op] and not PRED_PATH[op] then
    error('query: unknown predicate ' .. tostring(op), 0)
  end
  local nseg = tonumber(argv[at + 1])
  local node = {op = op, segs = {}, quoted = {}}
  for k = 1, nseg do
    local seg = pred_token(argv[at + 1 + k])
    if seg[1] ~= 's' then
      error('a path segment is not a string')
    end
    node.segs[k], node.quoted[k] = seg[2], pred_scan.needle(seg[2], 'whole')
  end
  at = at + 2 + nseg
  if PRED_OPERAND[op] then
    local d = pred_token(argv[at])
    node.d, node.t, node.v = d, d[1], d[2]
    at = at + 1
  end
  return node, at
end

-- Byte strings every value the predicate holds for contains, where the scanner says its
-- text is plain (JSON without a backslash: every string spelled as it decodes; msgpack): the
-- keys on the path of a leaf that needs its value present, and a string operand of eq,
-- contains, startsWith, endsWith. A value missing one is refused by a find apiece.
local function pred_needles(node, out)
  local op = node.op
  if op == 'and' then
    for _, kid in ipairs(node.kids) do
      pred_needles(kid, out)
    end
  elseif not (op == 'or' or op == 'not' or op == 'neq' or op == 'notContains'
      or op == 'isNull') then
    for _, needle in ipairs(node.quoted) do
      out[#out + 1] = needle
    end
    if node.t == 's' then
      local how = ({eq = 'whole', contains = 'part', startsWith = 'prefix',
        endsWith = 'suffix'})[op]
      if how then
        out[#out + 1] = pred_scan.needle(node.v, how)
      end
    end
  end
  return out
end

local function pred_compile(argv, at, count)
  if count == 0 then
    return nil
  end
  local ok, tree, after = pcall(pred_node, argv, at)
  if not ok or after ~= at + count then
    error('query: malformed predicate tokens' .. (ok and '' or ': ' .. tostring(tree)), 0)
  end
  tree.needles = pred_needles(tree, {})
  return tree
end

-- The index of the value at the node's path in s, or nil (MISSING).
local function pred_at(node, s, i)
  local segs, quoted = node.segs, node.quoted
  for k = 1, #segs do
    i = pred_scan.member(s, i, segs[k], quoted[k])
    if not i then
      return nil
    end
  end
  return i
end

local function pred_eq(node, s, i)
  if not i then
    return false
  end
  local t, v = pred_scan.scalar(s, i)
  if t == 'a' or t == 'o' then
    return node.t == t and pred_equal(pred_scan.decode(s, i, 1), node.d)
  end
  return pred_scalar_eq(t, v, node.t, node.v)
end

local function pred_contains(node, s, i)
  if not i then
    return false
  end
  local t, v = pred_scan.scalar(s, i)
  if t == 's' then
    return node.t == 's' and pred_find(v, node.v, 1, true) ~= nil
  elseif t == 'a' then
    local items = pred_scan.decode(s, i, 1)[2]
    for n = 1, #items do
      if pred_equal(items[n], node.d) then
        return true
      end
    end
  end
  return false
end

local function pred_eval(node, s, root)
  local op = node.op
  if op == 'and' then
    for _, kid in ipairs(node.kids) do
      if not pred_eval(kid, s, root) then
        return false
      end
    end
    return true
  elseif op == 'or' then
    for _, kid in ipairs(node.kids) do
      if pred_eval(kid, s, root) then
        return true
      end
    end
    return false
  elseif op == 'not' then
    return not pred_eval(node.kid, s, root)
  end
  local i = pred_at(node, s, root)
  if op == 'eq' then
    return pred_eq(node, s, i)
  elseif op == 'neq' then
    return not pred_eq(node, s, i)
  elseif op == 'contains' then
    return pred_contains(node, s, i)
  elseif op == 'notContains' then
    return not pred_contains(node, s, i)
  elseif op == 'exists' then
    return i ~= nil
  elseif op == 'isNull' then
    return i == nil or pred_scan.is_null(s, i)
  elseif op == 'isNotNull' then
    return i ~= nil and not pred_scan.is_null(s, i)
  elseif not i then
    return false
  end
  local t, v = pred_scan.scalar(s, i)
  local ot, ov = node.t, node.v
  if op == 'in' then
    if ot ~= 'a' then
      return false
    end
    local d = (t == 'a' or t == 'o') and pred_scan.decode(s, i, 1) or {t, v}
    for _, item in ipairs(ov) do
      if pred_equal(d, item) then
        return true
      end
    end
    return false
  elseif t ~= 's' or ot ~= 's' then
    if op == 'startsWith' or op == 'endsWith' then
      return false
    end
    if not ((t == 'i' or t == 'f') and (ot == 'i' or ot == 'f')) then
      return false
    end
    local c = pred_num_cmp(t, v, ot, ov)
    if op == 'gt' then
      return c == 1
    elseif op == 'gte' then
      return c == 1 or c == 0
    elseif op == 'lt' then
      return c == -1
    end
    return c == -1 or c == 0
  elseif op == 'startsWith' then
    return pred_sub(v, 1, #ov) == ov
  elseif op == 'endsWith' then
    return #ov == 0 or pred_sub(v, -#ov) == ov
  end
  local c = pred_bytes_cmp(v, ov)
  if op == 'gt' then
    return c == 1
  elseif op == 'gte' then
    return c >= 0
  elseif op == 'lt' then
    return c == -1
  end
  return c <= 0
end

local function pred_run(tree, s)
  local root, needles = pred_scan.start(s), tree.needles
  if needles[1] and pred_scan.plain() then
    for n = 1, #needles do
      if not pred_find(s, needles[n], 1, true) then
        return false
      end
    end
  end
  return pred_eval(tree, s, root)
end

local function pred_match(tree, s)
  local ok, hit = pcall(pred_run, tree, s)
  return ok and hit and pred_valid(s) or false
end
