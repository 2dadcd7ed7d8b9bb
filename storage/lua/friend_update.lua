--! use versionlog notify
-- Replace A's entry for one friend, if it is still what was read.
-- KEYS[1] base of A
-- ARGV[1] friend id, ARGV[2] entry as read, ARGV[3] new entry, ARGV[4] new version
-- id, ARGV[5] log length, ARGV[6] notifications kept, ARGV[7] notification
-- Returns {'OK', seq}, {'RETRY'} or {'NOT_FRIENDS'}.
local a = KEYS[1]
local current = redis.call('HGET', a .. ':friends', ARGV[1])
if not current then
  return {'NOT_FRIENDS'}
end
if current ~= ARGV[2] then
  return {'RETRY'}
end
redis.call('HSET', a .. ':friends', ARGV[1], ARGV[3])
vlog_record(a .. ':vlog:friends', ARGV[1], 'update', ARGV[4], ARGV[5])
return {'OK', notify(a, ARGV[7], ARGV[6])}
