-- clear: remove every item of one group and its metadata, recording one 'clear' change.
-- uses: clock common
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] group name, ARGV[2] stream MAXLEN.
-- Returns the number of items removed that had not expired.
-- Keys touched: KEYS[1], KEYS[2] and KEYS[4] (UNLINK: memory is freed off the main thread),
--   KEYS[3] (XADD, only when something was removed), KEYS[5] (SREM).
local n = redis.call('HLEN', KEYS[1])
if n > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  n = n - redis.call('ZCOUNT', KEYS[4], '-inf', now_ms())
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[4])
if KEYS[5] then
  redis.call('SREM', KEYS[5], ARGV[1])
end
if n > 0 then
  record(KEYS[3], ARGV[2], 'clear', ARGV[1], '', 0)
end
return n
