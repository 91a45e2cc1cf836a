-- update: apply UpdateOps (or an increment) to one item's value, losslessly, bump its
--   version and record the change, in one atomic call.
-- uses: clock status common ttl numbers $codec update
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] registry of groups with expiries (absent on Cluster).
-- ARGV[1] item key, ARGV[2] expected version ('' = any, '0' = must be absent), ARGV[3] group,
--   ARGV[4] feed settings (see include/common.lua), ARGV[5] what a missing item starts as (encoded {}, or 0 for
--   increment), ARGV[6] max encoded bytes of the result, ARGV[7] op name for the change record
--   ('update' or 'increment'), ARGV[8] expiry instruction (see include/ttl.lua),
--   ARGV[9...] the ops (see include/update.lua).
-- Returns {STATUS_OK, new_version, new_value_text}; {STATUS_CONFLICT, current_version} on a
--   version mismatch; {STATUS_REFUSED, code, op_index} when an op cannot apply (op_index 0: the
--   stored value itself) (include/status.lua).
-- Keys touched: KEYS[1] (HEXISTS, HGET, HSET), KEYS[2] (HGET, HSET or HDEL, PERSIST, PEXPIRE),
--   KEYS[3] (XADD, XTRIM), KEYS[4] (ZSCORE, ZADD or ZREM), KEYS[5] (SADD, SREM); PUBLISH
--   (markers).
local field = ARGV[1]
acl_group(KEYS)
local feed = feed_open(ARGV[4])
return feed_guard(feed, function()
  local now = now_ms()
  local has = redis.call('EXISTS', KEYS[4]) == 1
  purge_expired(KEYS, field, ARGV[3], feed, now, has)
  local recorded = redis.call('HGET', KEYS[2], field)
  local current = current_version(KEYS[1], field, recorded)
  if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  local text = ARGV[5]
  if current > 0 then
    text = redis.call('HGET', KEYS[1], field)
  end
  local ok, result = pcall(function()
    local ok_parse, root = pcall(codec_parse, text)
    if not ok_parse then
      error({code = 'not_decodable', op = 0}, 0)
    end
    return codec_emit((update_apply(root, ARGV, 9)))
  end)
  if not ok then
    if type(result) == 'table' then
      return feed_close(feed, {STATUS_REFUSED, result.code, result.op})
    end
    error(result)
  end
  if #result > tonumber(ARGV[6]) then
    return feed_close(feed, {STATUS_REFUSED, 'too_large', 0})
  end
  redis.call('HSET', KEYS[1], field, result)
  local version = current > 0 and current + 1 or first_version(KEYS[2], recorded)
  keep_version(KEYS[2], field, version, recorded)
  apply_expiry(KEYS, field, ARGV[3], ARGV[8], current == 0, now, has)
  record(feed, KEYS[3], ARGV[7], ARGV[3], field, version, current, result,
    current > 0 and text)
  return feed_close(feed, {STATUS_OK, version, result})
end)
