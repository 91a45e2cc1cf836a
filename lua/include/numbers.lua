-- numbers: exact number arithmetic on number text, for increments (Lua numbers are doubles).
-- KEYS: none. ARGV: none. Returns: nothing; defines local functions num_int_add, num_mul_add,
--   num_divmod (decimal-text integer arithmetic) and
--   num_add(a, b) -> text or nil, code: the sum of two JSON number texts, written as Python writes
--   it; integers stay integers and are exact across the signed 64-bit range (code 'overflow'
--   past it); a float result is the IEEE double sum, written as Python's repr writes it
--   (code 'not_finite' for infinity).
-- Keys touched: none.

local function num_is_int(text)
  return not string.find(text, '[%.eE]')
end

local function num_strip(digits)
  digits = string.gsub(digits, '^0+', '')
  if digits == '' then
    return '0'
  end
  return digits
end

local function num_cmp_abs(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end

local function num_add_abs(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry + (i > 0 and string.byte(a, i) - 48 or 0) + (j > 0 and string.byte(b, j) - 48 or 0)
    out[#out + 1] = string.char(48 + d % 10)
    carry = math.floor(d / 10)
    i, j = i - 1, j - 1
  end
  return num_strip(string.reverse(table.concat(out)))
end

local function num_sub_abs(a, b)  -- requires a >= b
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow - (j > 0 and string.byte(b, j) - 48 or 0)
    if d < 0 then
      d, borrow = d + 10, 1
    else
      borrow = 0
    end
    out[#out + 1] = string.char(48 + d)
    i, j = i - 1, j - 1
  end
  return num_strip(string.reverse(table.concat(out)))
end

-- d * m + a for a non-negative decimal text d and small non-negative m, a.
local function num_mul_add(d, m, a)
  local out, carry = {}, a
  for i = #d, 1, -1 do
    local v = (string.byte(d, i) - 48) * m + carry
    out[#out + 1] = string.char(48 + v % 10)
    carry = math.floor(v / 10)
  end
  while carry > 0 do
    out[#out + 1] = string.char(48 + carry % 10)
    carry = math.floor(carry / 10)
  end
  return num_strip(string.reverse(table.concat(out)))
end

-- Quotient (decimal text) and remainder of a non-negative decimal text d by a small m.
local function num_divmod(d, m)
  local out, r = {}, 0
  for i = 1, #d do
    local v = r * 10 + string.byte(d, i) - 48
    out[#out + 1] = string.char(48 + math.floor(v / m))
    r = v % m
  end
  return num_strip(table.concat(out)), r
end

local function num_split(text)
  if string.sub(text, 1, 1) == '-' then
    return true, num_strip(string.sub(text, 2))
  end
  return false, num_strip(text)
end

-- Integer sum of two decimal texts; nil, 'overflow' outside the signed 64-bit range unless
-- `unbounded` (used for msgpack's two's-complement arithmetic).
local function num_int_add(a, b, unbounded)
  local na, da = num_split(a)
  local nb, db = num_split(b)
  local neg, digits
  if na == nb then
    neg, digits = na, num_add_abs(da, db)
  else
    local c = num_cmp_abs(da, db)
    if c == 0 then
      return '0'
    elseif c > 0 then
      neg, digits = na, num_sub_abs(da, db)
    else
      neg, digits = nb, num_sub_abs(db, da)
    end
  end
  local limit = neg and '9223372036854775808' or '9223372036854775807'
  if not unbounded and num_cmp_abs(digits, limit) > 0 then
    return nil, 'overflow'
  end
  if neg and digits ~= '0' then
    return '-' .. digits
  end
  return digits
end

-- A double as Python's repr writes it: the shortest digits that read back as the same
-- double, fixed notation for exponents -4..15, else d.ddde+XX.
local function num_float_text(x)
  if x ~= x or x == math.huge or x == -math.huge then
    return nil, 'not_finite'
  end
  local s
  for precision = 0, 16 do
    s = string.format('%.' .. precision .. 'e', x)
    if tonumber(s) == x then
      break
    end
  end
  local sign, mantissa, exp = string.match(s, '^(-?)([%d%.]+)e([-+]%d+)$')
  exp = tonumber(exp)
  local digits = string.gsub(mantissa, '%.', '')
  if exp >= -4 and exp < 16 then
    local int, frac
    if exp >= 0 then
      if #digits <= exp + 1 then
        int, frac = digits .. string.rep('0', exp + 1 - #digits), '0'
      else
        int, frac = string.sub(digits, 1, exp + 1), string.sub(digits, exp + 2)
      end
    else
      int, frac = '0', string.rep('0', -exp - 1) .. digits
    end
    return sign .. int .. '.' .. frac
  end
  local lead = string.sub(digits, 1, 1)
  if #digits > 1 then
    lead = lead .. '.' .. string.sub(digits, 2)
  end
  return sign .. lead .. 'e' .. (exp < 0 and '-' or '+') .. string.format('%02d', math.abs(exp))
end

local function num_add(a, b)
  if num_is_int(a) and num_is_int(b) then
    return num_int_add(a, b)
  end
  return num_float_text(tonumber(a) + tonumber(b))
end
