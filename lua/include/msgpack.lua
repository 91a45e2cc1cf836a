-- msgpack: lossless msgpack for server-side updates (cmsgpack turns every number into a double).
-- KEYS: none. ARGV: none. Returns: nothing; defines the codec interface update.lua uses:
--   codec_parse(bytes) -> node, codec_key(raw) -> key text, codec_emit(node) -> bytes,
--   codec_increment(node, payload) -> node or nil, code. Needs numbers.lua.
-- Keys touched: none.
--
-- Nodes are those of json.lua, holding msgpack bytes instead of JSON text: every scalar keeps
-- its bytes, so what no op touches is written back unchanged. Numbers are read exactly
-- (64-bit ints as decimal text, floats as doubles) and written as Python's msgpack writes
-- them: the smallest int encoding, floats as float64.

local mp_parse_at

local function mp_uint(s, i, n)  -- n <= 4: fits a double exactly
  local v = 0
  for j = i, i + n - 1 do
    v = v * 256 + string.byte(s, j)
  end
  return v
end

local function mp_need(s, last)
  if last > #s then
    error('stored value is not msgpack: truncated')
  end
end

local function mp_container(s, i, count, depth, is_map)
  local node = is_map and {k = 'o', keys = {}, raw = {}, vals = {}} or {k = 'a', items = {}}
  for _ = 1, count do
    if is_map then
      local key_node
      key_node, i = mp_parse_at(s, i, depth + 1)
      local val
      val, i = mp_parse_at(s, i, depth + 1)
      local raw = key_node.text
      local key = key_node.k == 's' and key_node.str and string.sub(raw, key_node.str) or '\255' .. raw
      if node.vals[key] == nil then
        node.keys[#node.keys + 1] = key
        node.raw[#node.keys] = raw
      end
      node.vals[key] = val
    else
      local val
      val, i = mp_parse_at(s, i, depth + 1)
      node.items[#node.items + 1] = val
    end
  end
  return node, i
end

local mp_fixed = {[0xca] = 4, [0xcb] = 8, [0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8,
  [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8}
local mp_fixext = {[0xd4] = 1, [0xd5] = 2, [0xd6] = 4, [0xd7] = 8, [0xd8] = 16}

-- A scalar of `size` bytes starting at i; str marks where a string's UTF-8 text begins.
local function mp_scalar(s, i, size, kind, str)
  mp_need(s, i + size - 1)
  return {k = kind, text = string.sub(s, i, i + size - 1), str = str}, i + size
end

mp_parse_at = function(s, i, depth)
  if depth > 200 then
    error('stored value nests too deeply')
  end
  mp_need(s, i)
  local b = string.byte(s, i)
  if b <= 0x7f or b >= 0xe0 then
    return mp_scalar(s, i, 1, 'n')
  elseif b <= 0x8f then
    return mp_container(s, i + 1, b - 0x80, depth, true)
  elseif b <= 0x9f then
    return mp_container(s, i + 1, b - 0x90, depth, false)
  elseif b <= 0xbf then
    return mp_scalar(s, i, 1 + b - 0xa0, 's', 2)
  elseif b == 0xc0 or b == 0xc2 or b == 0xc3 then
    return mp_scalar(s, i, 1, 'l')
  elseif mp_fixed[b] then
    return mp_scalar(s, i, 1 + mp_fixed[b], 'n')
  elseif b >= 0xd9 and b <= 0xdb then  -- str 8/16/32
    local w = 2 ^ (b - 0xd9)
    mp_need(s, i + w)
    return mp_scalar(s, i, 1 + w + mp_uint(s, i + 1, w), 's', 2 + w)
  elseif b >= 0xc4 and b <= 0xc6 then  -- bin 8/16/32
    local w = 2 ^ (b - 0xc4)
    mp_need(s, i + w)
    return mp_scalar(s, i, 1 + w + mp_uint(s, i + 1, w), 'b')
  elseif b >= 0xc7 and b <= 0xc9 then  -- ext 8/16/32
    local w = 2 ^ (b - 0xc7)
    mp_need(s, i + w)
    return mp_scalar(s, i, 2 + w + mp_uint(s, i + 1, w), 'b')
  elseif mp_fixext[b] then
    return mp_scalar(s, i, 2 + mp_fixext[b], 'b')
  elseif b == 0xdc or b == 0xdd then
    local w = b == 0xdc and 2 or 4
    mp_need(s, i + w)
    return mp_container(s, i + 1 + w, mp_uint(s, i + 1, w), depth, false)
  elseif b == 0xde or b == 0xdf then
    local w = b == 0xde and 2 or 4
    mp_need(s, i + w)
    return mp_container(s, i + 1 + w, mp_uint(s, i + 1, w), depth, true)
  end
  error('stored value is not msgpack')
end

local function codec_parse(s)
  local node, i = mp_parse_at(s, 1, 0)
  if i <= #s then
    error('stored value is not msgpack: trailing bytes')
  end
  return node
end

local function codec_key(raw)
  local node = codec_parse(raw)
  return string.sub(raw, node.str)
end

local function mp_be(v, n)  -- v < 2^32 as n big-endian bytes
  local out = {}
  for j = n, 1, -1 do
    out[j] = string.char(v % 256)
    v = math.floor(v / 256)
  end
  return table.concat(out)
end

local function mp_header(count, fix, w16, w32)
  if count < 16 then
    return string.char(fix + count)
  elseif count < 65536 then
    return string.char(w16) .. mp_be(count, 2)
  end
  return string.char(w32) .. mp_be(count, 4)
end

local function mp_emit_into(node, out)
  if node.k == 'o' then
    out[#out + 1] = mp_header(#node.keys, 0x80, 0xde, 0xdf)
    for n, key in ipairs(node.keys) do
      out[#out + 1] = node.raw[n]
      mp_emit_into(node.vals[key], out)
    end
  elseif node.k == 'a' then
    out[#out + 1] = mp_header(#node.items, 0x90, 0xdc, 0xdd)
    for _, item in ipairs(node.items) do
      mp_emit_into(item, out)
    end
  else
    out[#out + 1] = node.text
  end
end

local function codec_emit(node)
  local out = {}
  mp_emit_into(node, out)
  return table.concat(out)
end

-- Decimal text of the n-byte big-endian unsigned integer at s[i].
local function mp_decimal(s, i, n)
  local d = '0'
  for j = i, i + n - 1 do
    d = num_mul_add(d, 256, string.byte(s, j))
  end
  return d
end

local function mp_f64(s, i)
  local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(s, i, i + 7)
  local sign = b1 >= 128 and -1 or 1
  local exp = (b1 % 128) * 16 + math.floor(b2 / 16)
  local mant = (((((b2 % 16) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6) * 65536 + b7 * 256 + b8
  if exp == 0 then
    return sign * math.ldexp(mant, -1074)
  elseif exp == 2047 then
    return mant == 0 and sign * math.huge or (0 / 0)
  end
  return sign * math.ldexp(mant + 2 ^ 52, exp - 1075)
end

local function mp_f32(s, i)
  local b1, b2, b3, b4 = string.byte(s, i, i + 3)
  local sign = b1 >= 128 and -1 or 1
  local exp = (b1 % 128) * 2 + math.floor(b2 / 128)
  local mant = ((b2 % 128) * 256 + b3) * 256 + b4
  if exp == 0 then
    return sign * math.ldexp(mant, -149)
  elseif exp == 255 then
    return mant == 0 and sign * math.huge or (0 / 0)
  end
  return sign * math.ldexp(mant + 2 ^ 23, exp - 150)
end

-- A number node's value: 'int', decimal text; or 'float', a double.
local function mp_number(text)
  local b = string.byte(text, 1)
  if b <= 0x7f then
    return 'int', tostring(b)
  elseif b >= 0xe0 then
    return 'int', tostring(b - 256)
  elseif b == 0xca then
    return 'float', mp_f32(text, 2)
  elseif b == 0xcb then
    return 'float', mp_f64(text, 2)
  end
  local n = #text - 1
  local d = mp_decimal(text, 2, n)
  if b >= 0xd0 and string.byte(text, 2) >= 128 then  -- two's complement: subtract 2^(8n)
    d = num_int_add(d, '-' .. mp_decimal(string.char(1) .. string.rep('\0', n), 1, n + 1), true)
  end
  return 'int', d
end

local function mp_be_decimal(d, n)  -- decimal text of a non-negative int < 2^(8n), as n bytes
  local out = {}
  for j = n, 1, -1 do
    local r
    d, r = num_divmod(d, 256)
    out[j] = string.char(r)
  end
  return table.concat(out)
end

local function mp_pack_int(d)
  local v = tonumber(d)
  if v >= 0 then
    if v < 128 then
      return string.char(v)
    elseif v < 256 then
      return '\204' .. mp_be(v, 1)
    elseif v < 65536 then
      return '\205' .. mp_be(v, 2)
    elseif v < 4294967296 then
      return '\206' .. mp_be(v, 4)
    end
    return '\207' .. mp_be_decimal(d, 8)
  end
  if v >= -32 then
    return string.char(256 + v)
  elseif v >= -128 then
    return '\208' .. mp_be(256 + v, 1)
  elseif v >= -32768 then
    return '\209' .. mp_be(65536 + v, 2)
  elseif v >= -2147483648 then
    return '\210' .. mp_be(4294967296 + v, 4)
  end
  return '\211' .. mp_be_decimal(num_int_add(d, '18446744073709551616', true), 8)
end

local function mp_pack_f64(x)
  local sign = 0
  if x < 0 or (x == 0 and 1 / x < 0) then
    sign, x = 128, -x
  end
  local exp, mant = 0, 0
  if x > 0 then
    local m, e = math.frexp(x)  -- x = m * 2^e, 0.5 <= m < 1
    if e + 1022 >= 1 then
      exp, mant = e + 1022, (m * 2 - 1) * 2 ^ 52
    else
      mant = math.ldexp(m, e + 1074)  -- subnormal
    end
  end
  local high = math.floor(mant / 2 ^ 32)
  return '\203' .. string.char(sign + math.floor(exp / 16), (exp % 16) * 16 + math.floor(high / 65536))
    .. mp_be(high % 65536, 2) .. mp_be(mant % 2 ^ 32, 4)
end

local function codec_increment(node, payload)
  local ka, a = mp_number(node.text)
  local kb, b = mp_number(codec_parse(payload).text)
  if ka == 'int' and kb == 'int' then
    local sum, code = num_int_add(a, b)
    if not sum then
      return nil, code
    end
    return {k = 'n', text = mp_pack_int(sum)}
  end
  local x = (ka == 'int' and tonumber(a) or a) + (kb == 'int' and tonumber(b) or b)
  if x ~= x or x == math.huge or x == -math.huge then
    return nil, 'not_finite'
  end
  return {k = 'n', text = mp_pack_f64(x)}
end
