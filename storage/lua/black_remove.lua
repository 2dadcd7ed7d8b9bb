--! use notify
-- Take B off A's blacklist.
-- KEYS[1] base of A
-- ARGV[1] B id, ARGV[2] notifications kept, ARGV[3] notification for A
-- Returns {'OK', seq} or {'NOT_BLOCKED'}.
local a = KEYS[1]
if redis.call('HDEL', a .. ':black', ARGV[1]) == 0 then
  return {'NOT_BLOCKED'}
end
redis.call('ZREM', a .. ':black:order', ARGV[1])
return {'OK', notify(a, ARGV[3], ARGV[2])}
