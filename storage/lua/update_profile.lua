-- Change profile fields of an existing account and bump its version.
-- KEYS[1] account hash
-- ARGV: field, value, field, value, ... (may be empty)
-- Returns the new version, or -1 when the account does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if #ARGV > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
