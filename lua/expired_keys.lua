-- expired_keys: the keys of a group's items whose expiry has passed (they stay in the hash
--   until cleanup). Sent in one pipeline right after HGETALL or HKEYS, so values never pass
--   through Lua. Read-only.
-- uses: clock
-- KEYS[1] expiries.
-- ARGV: none.
-- Returns the expired item keys (none when the group has no expiries).
-- Keys touched: KEYS[1] (ZRANGEBYSCORE).
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms())
