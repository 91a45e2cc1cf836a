-- external: record a change made outside the engine, as the keyspace bridge saw it.
-- uses: common
-- KEYS[1] change stream.
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] '' (the head: include/common.lua; the
--   group is '' for a gap record: the bridge may have missed events), ARGV[4] the Redis event
--   (hset, hdel, del, expired, evicted, ..., or 'gap').
-- Returns 1.
-- Keys touched: KEYS[1] (XADD, XTRIM). No markers: it touches no data hash.
acl_need('XTRIM', KEYS[1], 'MAXLEN', '1')  -- after the XADD, its one write
acl_need('TIME')
local feed = feed_parse(ARGV[1])
if feed.streams then
  feed.streams[KEYS[1]] = true
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', feed.maxlen, '*',
  'op', 'external', 'group', ARGV[2], 'key', ARGV[3], 'version', '0', 'prev', '0',
  'event', ARGV[4])
return feed_close(feed, 1)
