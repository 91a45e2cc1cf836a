-- query: one call of a filtered, paged read of a group (state.query, state.count): HSCAN
--   pages of its data hash, each value tested in the server (include/predicate.lua), only
--   the live matches returned. Read-only: it calls no write command.
-- uses: clock numbers $codec predicate
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] expiries.
-- ARGV[1] HSCAN cursor to start at ('0': the start), ARGV[2] the matches of that first page
--   already returned, to leave out (a resume in the middle of a page): the first 16 hex digits
--   of each one's key's SHA1, concatenated ('' for none); by identity, not by count, so that a
--   match returned and then deleted does not shift the rest. ARGV[3] COUNT for each HSCAN call, ARGV[4] budget:
--   fields examined in this call (once reached, stop after the page in hand), ARGV[5] wanted:
--   stop after the page in which the matches reached this many (0: no such stop; count's
--   calls want every match the budget reaches), ARGV[6] mode: 'items' or
--   'count', ARGV[7] predicate token count (0: every live item whose value the client's codec
--   decodes matches),
--   ARGV[8...] the predicate tokens in prefix order (see include/predicate.lua).
-- Returns {next_cursor ('0': the hash is done), page_cursor (the cursor the last page examined
--   started at), page_matches (how many of the returned matches came from that last page,
--   after the skip)}, followed in 'items' mode by key, value (the stored bytes), version (the
--   versions hash's field, 1 when absent, as get_item.lua reads it) and expires_at (ms, or
--   false; the earlier of the item's and the group's, as get_item.lua reports it) per match,
--   in HSCAN order; in 'count' mode by the number of matches.
--   A match is live (its expiry is after the server's TIME, read once) and a value the client's
--   codec decodes for which the predicate holds. Every call examines at least one page.
-- Keys touched: KEYS[1] (HSCAN, PEXPIRETIME), KEYS[2] (HMGET), KEYS[3] (EXISTS, ZMSCORE).
-- Bound: a call examines pages until `budget` fields (or the end, or `wanted` matches): at
--   most budget - 1 plus one page. A page is about COUNT fields of a hashtable-encoded hash,
--   but HSCAN returns a listpack-encoded hash whole whatever COUNT says: that page is bounded
--   by hash-max-listpack-entries (and -value) instead. A field costs a find per key and per
--   skipped value on the path the predicate reads, far less than parsing it; a match also
--   costs a validation of its whole value. The reply holds at most the fields examined.

local mode = ARGV[6]
if mode ~= 'items' and mode ~= 'count' then
  error('query: mode must be items or count', 0)
end
local items = mode == 'items'
local tree = pred_compile(ARGV, 8, tonumber(ARGV[7]))
local cursor, count = ARGV[1], ARGV[3]
local skip = nil  -- digest -> true: the first page's matches already returned
if ARGV[2] ~= '' then
  skip = {}
  for at = 1, #ARGV[2], 16 do
    skip[string.sub(ARGV[2], at, at + 15)] = true
  end
end
local budget, wanted = tonumber(ARGV[4]), tonumber(ARGV[5])
local expiring = redis.call('EXISTS', KEYS[3]) == 1
local now = expiring and now_ms()
local group_at = items and redis.call('PEXPIRETIME', KEYS[1]) or -1

-- `cmd key` over the list, in chunks (unpack's stack limit), its replies concatenated.
local function query_each(cmd, key, list)
  local out = {}
  for first = 1, #list, 1000 do
    local part = redis.call(cmd, key, unpack(list, first, math.min(first + 999, #list)))
    for n = 1, #part do
      out[#out + 1] = part[n]
    end
  end
  return out
end

local out = {'', '', 0}
local examined, total, page_cursor, page_matches = 0, 0, cursor, 0
repeat
  page_cursor = cursor
  local reply = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', count)
  cursor = reply[1]
  local flat = reply[2]
  examined = examined + #flat / 2
  local keys, vals = {}, {}
  for j = 1, #flat, 2 do
    if (tree and pred_match(tree, flat[j + 1])) or (not tree and pred_valid(flat[j + 1])) then
      keys[#keys + 1] = flat[j]
      vals[#keys] = flat[j + 1]
    end
  end
  local ats = expiring and #keys > 0 and query_each('ZMSCORE', KEYS[3], keys) or {}
  local live = {}
  for n = 1, #keys do
    local at = tonumber(ats[n])
    if not (at and at <= now)
        and not (skip and skip[string.sub(redis.sha1hex(keys[n]), 1, 16)]) then
      live[#live + 1] = n
    end
  end
  skip = nil
  page_matches = #live
  total = total + page_matches
  if items and page_matches > 0 then
    local names = {}
    for m = 1, page_matches do
      names[m] = keys[live[m]]
    end
    local versions = query_each('HMGET', KEYS[2], names)
    for m = 1, page_matches do
      local n = live[m]
      local at = tonumber(ats[n])
      if group_at >= 0 and (not at or group_at < at) then
        at = group_at
      end
      out[#out + 1] = keys[n]
      out[#out + 1] = vals[n]
      out[#out + 1] = tonumber(versions[m]) or 1
      out[#out + 1] = at or false
    end
  end
until cursor == '0' or examined >= budget or (wanted > 0 and total >= wanted)
out[1], out[2], out[3] = cursor, page_cursor, page_matches
if not items then
  out[4] = total
end
return out
