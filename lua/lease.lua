-- lease: take or renew a lease held by one process at a time (the keyspace bridge's).
-- KEYS[1] the lease key.
-- ARGV[1] this holder's token, ARGV[2] lease length in ms.
-- Returns 1 when this holder now has the lease for ARGV[2] ms, 0 when another holder has it.
-- Keys touched: KEYS[1] (SET NX PX, GET, PEXPIRE).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
