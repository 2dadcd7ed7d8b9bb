-- Replace the password hash, revoke every token, and bump the version.
-- KEYS[1] account hash, KEYS[2] tokens hash
-- ARGV[1] new password hash
-- Returns the new version, or -1 when the account does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1])
redis.call('DEL', KEYS[2])
return redis.call('HINCRBY', KEYS[1], 'version', 1)
