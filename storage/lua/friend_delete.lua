--! use versionlog notify
-- Remove B from A's friend list, and with both_sides A from B's.
-- KEYS[1] base of A, KEYS[2] base of B
-- ARGV[1] A id, ARGV[2] B id, ARGV[3] '1' both sides, ARGV[4] new version id for
-- A's log, ARGV[5] for B's, ARGV[6] log length, ARGV[7] notifications kept,
-- ARGV[8] notification for A, ARGV[9] notification for B
-- Returns {'OK', seq for A, seq for B or 0} or {'NOT_FRIENDS'}.
local a, b = KEYS[1], KEYS[2]
local a_id, b_id = ARGV[1], ARGV[2]
if redis.call('HDEL', a .. ':friends', b_id) == 0 then
  return {'NOT_FRIENDS'}
end
redis.call('ZREM', a .. ':friends:order', b_id)
redis.call('SREM', b .. ':friend_of', a_id)
vlog_record(a .. ':vlog:friends', b_id, 'delete', ARGV[4], ARGV[6])
local seq_a = notify(a, ARGV[8], ARGV[7])
local seq_b = 0
if ARGV[3] == '1' and redis.call('HDEL', b .. ':friends', a_id) == 1 then
  redis.call('ZREM', b .. ':friends:order', a_id)
  redis.call('SREM', a .. ':friend_of', b_id)
  vlog_record(b .. ':vlog:friends', a_id, 'delete', ARGV[5], ARGV[6])
  seq_b = notify(b, ARGV[9], ARGV[7])
end
return {'OK', seq_a, seq_b}
