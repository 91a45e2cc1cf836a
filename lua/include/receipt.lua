-- receipt: an idempotency key's receipt around a write script (motia_state/idempotency.py).
-- Not named in a "-- uses:" line: scripts.load(name, codec, receipted=True) puts it, with
--   status.lua, after a write script's own helpers, and wraps the script's body in a function
--   (receipt_run calls it), so every write script has its receipted variant without a second
--   copy of its text.
-- KEYS: the script's own, then one more: the receipt (a string in the group's slot,
--   KeyLayout.receipt), which receipt_take removes from KEYS before the body reads them.
-- ARGV: the script's own, then one more: the receipt spec, 16 bytes of the call's fingerprint
--   followed by the receipt's lifetime in ms (digits) and, under replicated durability, 'w'
--   (a replay writes the receipt again, so that the WAIT after it covers the first write),
--   likewise removed.
-- Returns: nothing; defines local functions receipt_take and receipt_run.
-- Keys touched: the receipt (GET; SET with PX when the write applied, SET KEEPTTL on a
--   replay under 'w').
--
-- A receipt holds the fingerprint and the body's reply (cmsgpack): a later call with the key
-- gets that reply again and runs nothing, so it writes nothing and records no change; with
-- another fingerprint it is refused before anything runs. Only a reply that applied leaves
-- one: a status reply other than STATUS_OK (a failed condition, a refused update op) wrote
-- nothing, and a retry is a first attempt. The SET is checked against the ACL before the body
-- runs, as every write script checks what it can reach (include/common.lua).

local function receipt_take()
  return table.remove(KEYS), table.remove(ARGV)
end

local function receipt_run(key, spec, body)
  local fingerprint = string.sub(spec, 1, 16)
  local ms, rewrite = string.match(string.sub(spec, 17), '^(%d+)(w?)$')
  local stored = redis.call('GET', key)
  if stored then
    if string.sub(stored, 1, 16) ~= fingerprint then
      return redis.error_reply('IDEMPOTENCY_KEY_REUSED this idempotency key already applied '
        .. 'a call with other arguments; nothing was written')
    end
    local ok, reply = pcall(cmsgpack.unpack, string.sub(stored, 17))
    if not ok or (type(reply) ~= 'table' and type(reply) ~= 'number') then
      return redis.error_reply('IDEMPOTENCY_RECEIPT_DAMAGED the receipt holds no reply')
    end
    if rewrite == 'w' then  -- replicated durability: the WAIT after this counts this write,
      acl_need('SET', key)  -- which replicas apply after the first call's
      redis.call('SET', key, stored, 'KEEPTTL')
    end
    return reply
  end
  acl_need('SET', key)
  local reply = body()
  if type(reply) ~= 'table' or reply[1] == STATUS_OK then
    redis.call('SET', key, fingerprint .. cmsgpack.pack(reply), 'PX', ms)
  end
  return reply
end
