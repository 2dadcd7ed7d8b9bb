--! use notify
-- Put B on A's blacklist. The friendship, if any, is kept.
-- KEYS[1] base of A, KEYS[2] base of B
-- ARGV[1] B id, ARGV[2] encoded entry, ARGV[3] time (ms), ARGV[4] notifications
-- kept, ARGV[5] notification for A
-- Returns {'OK', seq}, {'USER_NOT_FOUND'} or {'ALREADY_BLOCKED'}.
local a, b = KEYS[1], KEYS[2]
if redis.call('EXISTS', b .. ':account') == 0 then
  return {'USER_NOT_FOUND'}
end
if redis.call('HSETNX', a .. ':black', ARGV[1], ARGV[2]) == 0 then
  return {'ALREADY_BLOCKED'}
end
redis.call('ZADD', a .. ':black:order', ARGV[3], ARGV[1])
return {'OK', notify(a, ARGV[5], ARGV[4])}
