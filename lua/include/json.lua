-- json: lossless JSON for server-side updates (redis' cjson is not: 14 digits, [] vs {}, key order).
-- KEYS: none. ARGV: none. Returns: nothing; defines local functions
--   json_parse(text) -> node, json_emit(node) -> text, json_key(raw) -> decoded key text,
--   and the codec interface update.lua uses (codec_parse, codec_key, codec_emit,
--   codec_increment); msgpack.lua defines the same interface for msgpack. Needs numbers.lua.
-- Keys touched: none.
--
-- A parsed value is a tree of nodes that keeps the source text of every scalar:
--   {k='o', keys={decoded...}, raw={key text...}, vals={[decoded]=node}}  object, in key order
--   {k='a', items={node...}}                                               array
--   {k='n', text='3.141592653589793'}                                       number, as written
--   {k='s', text='"a\/b"'}                                                  string, as written
--   {k='l', text='true'|'false'|'null'}                                     literal
-- Emitting a tree writes every untouched part back byte for byte, compactly.

local json_parse_value

local function json_ws(s, i)
  local _, e = string.find(s, '^[ \t\r\n]*', i)
  return e + 1
end

local function json_string_end(s, i)
  local j = i + 1
  while true do
    local a = string.find(s, '["\\]', j)
    if not a then
      error('stored value is not JSON: unterminated string')
    end
    if string.byte(s, a) == 34 then
      return a
    end
    j = a + 2
  end
end

local function json_utf8(cp)
  if cp < 0x80 then
    return string.char(cp)
  elseif cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40,
      0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local json_escapes = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n',
  r = '\r', t = '\t'}

-- The text of a JSON string literal (quotes included), unescaped to UTF-8.
local function json_key(raw)
  local body = string.sub(raw, 2, -2)
  if not string.find(body, '\\', 1, true) then
    return body
  end
  local out, i, n = {}, 1, #body
  while i <= n do
    local c = string.sub(body, i, i)
    if c ~= '\\' then
      out[#out + 1] = c
      i = i + 1
    else
      local e = string.sub(body, i + 1, i + 1)
      if e == 'u' then
        local cp = tonumber(string.sub(body, i + 2, i + 5), 16)
        i = i + 6
        if cp >= 0xD800 and cp <= 0xDBFF and string.sub(body, i, i + 1) == '\\u' then
          local lo = tonumber(string.sub(body, i + 2, i + 5), 16)
          if lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            i = i + 6
          end
        end
        out[#out + 1] = json_utf8(cp)
      else
        out[#out + 1] = json_escapes[e] or e
        i = i + 2
      end
    end
  end
  return table.concat(out)
end

json_parse_value = function(s, i, depth)
  if depth > 200 then
    error('stored value nests too deeply')
  end
  i = json_ws(s, i)
  local c = string.sub(s, i, i)
  if c == '{' then
    local node = {k = 'o', keys = {}, raw = {}, vals = {}}
    i = json_ws(s, i + 1)
    if string.sub(s, i, i) == '}' then
      return node, i + 1
    end
    while true do
      i = json_ws(s, i)
      if string.sub(s, i, i) ~= '"' then
        error('stored value is not JSON: object key expected')
      end
      local e = json_string_end(s, i)
      local raw = string.sub(s, i, e)
      local key = json_key(raw)
      i = json_ws(s, e + 1)
      if string.sub(s, i, i) ~= ':' then
        error('stored value is not JSON: colon expected')
      end
      local val
      val, i = json_parse_value(s, i + 1, depth + 1)
      if node.vals[key] == nil then
        node.keys[#node.keys + 1] = key
        node.raw[#node.keys] = raw
      end
      node.vals[key] = val
      i = json_ws(s, i)
      c = string.sub(s, i, i)
      if c == '}' then
        return node, i + 1
      elseif c ~= ',' then
        error('stored value is not JSON: , or } expected')
      end
      i = i + 1
    end
  elseif c == '[' then
    local node = {k = 'a', items = {}}
    i = json_ws(s, i + 1)
    if string.sub(s, i, i) == ']' then
      return node, i + 1
    end
    while true do
      local val
      val, i = json_parse_value(s, i, depth + 1)
      node.items[#node.items + 1] = val
      i = json_ws(s, i)
      c = string.sub(s, i, i)
      if c == ']' then
        return node, i + 1
      elseif c ~= ',' then
        error('stored value is not JSON: , or ] expected')
      end
      i = i + 1
    end
  elseif c == '"' then
    local e = json_string_end(s, i)
    return {k = 's', text = string.sub(s, i, e)}, e + 1
  end
  local _, e = string.find(s, '^-?%d+%.?%d*[eE]?[-+]?%d*', i)
  if e then
    return {k = 'n', text = string.sub(s, i, e)}, e + 1
  end
  for _, lit in ipairs({'true', 'false', 'null'}) do
    if string.sub(s, i, i + #lit - 1) == lit then
      return {k = 'l', text = lit}, i + #lit
    end
  end
  error('stored value is not JSON')
end

local function json_parse(s)
  local node, i = json_parse_value(s, 1, 0)
  if json_ws(s, i) <= #s then
    error('stored value is not JSON: trailing text')
  end
  return node
end

local function json_emit_into(node, out)
  local k = node.k
  if k == 'o' then
    out[#out + 1] = '{'
    for n, key in ipairs(node.keys) do
      if n > 1 then
        out[#out + 1] = ','
      end
      out[#out + 1] = node.raw[n]
      out[#out + 1] = ':'
      json_emit_into(node.vals[key], out)
    end
    out[#out + 1] = '}'
  elseif k == 'a' then
    out[#out + 1] = '['
    for n, item in ipairs(node.items) do
      if n > 1 then
        out[#out + 1] = ','
      end
      json_emit_into(item, out)
    end
    out[#out + 1] = ']'
  else
    out[#out + 1] = node.text
  end
end

local function json_emit(node)
  local out = {}
  json_emit_into(node, out)
  return table.concat(out)
end

-- The codec interface (see update.lua).
local codec_parse, codec_key, codec_emit = json_parse, json_key, json_emit

-- The number node `node` plus the amount `payload` (number text), or nil and an error code.
local function codec_increment(node, payload)
  local text, code = num_add(node.text, payload)
  if not text then
    return nil, code
  end
  return {k = 'n', text = text}
end
