-- update: apply UpdateOps (or an increment) to one item's value, losslessly, and commit it with
--   its next version and a change record (include/item.lua), in one atomic call.
-- uses: clock status common ttl item group numbers $codec update
-- KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] expiries,
--   KEYS[5] group deadline, KEYS[6] registry of group deadlines, KEYS[7] registry of groups
--   with expiries (KEYS[6..7] absent on Cluster: include/ttl.lua).
-- ARGV[1] feed settings, ARGV[2] group name, ARGV[3] item key (the head: include/common.lua),
--   ARGV[4] expected version ('' = any, '0' = must be absent), ARGV[5] expiry instruction (see
--   include/ttl.lua), ARGV[6] what a missing item starts as (encoded {}, or 0 for increment),
--   ARGV[7] op name for the change record ('update' or 'increment'), ARGV[8] max encoded bytes
--   of the result, ARGV[9] group TTL in ms ('' = none: see include/group.lua), ARGV[10...] the
--   ops (see include/update.lua).
-- Returns {STATUS_OK, new_version, new_value_text}; {STATUS_CONFLICT, current_version} on a
--   version mismatch; {STATUS_REFUSED, code, op_index} when an op cannot apply (op_index 0: the
--   stored value itself) (include/status.lua).
-- Keys touched: KEYS[1] (HGET, HEXISTS, HSET), KEYS[2] (HGET, HSET or HDEL, PERSIST, PEXPIRE), KEYS[3]
--   (XADD, XTRIM), KEYS[4] (EXISTS, ZSCORE, ZADD or ZREM), KEYS[7] (SADD, SREM); PUBLISH
--   (markers); and for a group that expires whole, what
--   include/group.lua touches.
local has, gx = group_load(KEYS, tonumber(ARGV[9]))  -- reads: before the checks is fine
acl_group(KEYS, has, reaches_expiry(ARGV[5], has), gx)
local feed = feed_open(ARGV[1])
return feed_guard(feed, function()
  local group, field, expected = ARGV[2], ARGV[3], ARGV[4]
  local now = (has or gx) and now_ms()  -- else read only if an expiry is set (apply_expiry)
  if gx and gx.open(feed, group, now) then
    has = false
  end
  local recorded, current, old = item_load(KEYS, group, field, feed, now, has, 'value')
  if expected ~= '' and tonumber(expected) ~= current then
    if gx then
      gx.close(group, now, false)
    end
    return feed_close(feed, {STATUS_CONFLICT, current})
  end
  local ok, result = pcall(function()
    local ok_parse, root = pcall(codec_parse, old or ARGV[6])
    if not ok_parse then
      error({code = 'not_decodable', op = 0}, 0)
    end
    return codec_emit((update_apply(root, ARGV, 10)))
  end)
  if not ok then
    if type(result) == 'table' then
      if gx then
        gx.close(group, now, false)
      end
      return feed_close(feed, {STATUS_REFUSED, result.code, result.op})
    end
    error(result)
  end
  if #result > tonumber(ARGV[8]) then
    if gx then
      gx.close(group, now, false)
    end
    return feed_close(feed, {STATUS_REFUSED, 'too_large', 0})
  end
  local version = item_write(feed, KEYS, group, field, result, recorded, ARGV[5], now, has,
    ARGV[7], old)
  if gx then
    gx.close(group, now, true)
  end
  return feed_close(feed, {STATUS_OK, version, result})
end)
