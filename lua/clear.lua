-- clear: remove every item of one group and its metadata, recording one 'clear' change.
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream.
-- ARGV[1] group name, ARGV[2] stream MAXLEN.
-- Returns the number of items removed.
-- Keys touched: KEYS[1] and KEYS[2] (UNLINK: memory is freed off the main thread),
--   KEYS[3] (XADD, only when something was removed).
local n = redis.call('HLEN', KEYS[1])
redis.call('UNLINK', KEYS[1], KEYS[2])
if n > 0 then
  record(KEYS[3], ARGV[2], 'clear', ARGV[1], '', 0)
end
return n
