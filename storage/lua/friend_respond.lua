--! use versionlog notify
-- Accept or refuse the pending application from A to R; on accept, make both
-- sides friends (an existing entry is kept as it is).
-- KEYS[1] base of R (responder), KEYS[2] base of A (applicant)
-- ARGV[1] R id, ARGV[2] A id, ARGV[3] the application as read (compare-and-set),
-- ARGV[4] the handled application, ARGV[5] '1' accept / '0' refuse, ARGV[6] time (ms),
-- ARGV[7] entry for R's list, ARGV[8] entry for A's list,
-- ARGV[9] new version id for R's log, ARGV[10] for A's, ARGV[11] log length,
-- ARGV[12] notifications kept, ARGV[13] result notification (1201/1202),
-- ARGV[14] friend-added notification for R, ARGV[15] for A
-- Returns {'OK', seq R result, seq A result, seq R added or 0, seq A added or 0},
-- {'RETRY'} when the application changed since it was read, or {error name}.
local r, a = KEYS[1], KEYS[2]
local r_id, a_id = ARGV[1], ARGV[2]
local current = redis.call('HGET', r .. ':fa:in', a_id)
if not current then
  return {'NO_SUCH_APPLICATION'}
end
if current ~= ARGV[3] then
  return {'RETRY'}
end
local accept = ARGV[5] == '1'
if accept then
  if redis.call('HEXISTS', r .. ':black', a_id) == 1 then
    return {'PEER_BLOCKED'}
  end
  if redis.call('HEXISTS', a .. ':black', r_id) == 1 then
    return {'BLOCKED_BY_PEER'}
  end
end
redis.call('HSET', r .. ':fa:in', a_id, ARGV[4])
redis.call('SREM', r .. ':fa:in:pending', a_id)
if redis.call('HEXISTS', a .. ':fa:out', r_id) == 1 then
  redis.call('HSET', a .. ':fa:out', r_id, ARGV[4])
end
local r_added, a_added = 0, 0
if accept then
  if redis.call('HSETNX', r .. ':friends', a_id, ARGV[7]) == 1 then
    redis.call('ZADD', r .. ':friends:order', ARGV[6], a_id)
    redis.call('SADD', a .. ':friend_of', r_id)
    vlog_record(r .. ':vlog:friends', a_id, 'insert', ARGV[9], ARGV[11])
    r_added = notify(r, ARGV[14], ARGV[12])
  end
  if redis.call('HSETNX', a .. ':friends', r_id, ARGV[8]) == 1 then
    redis.call('ZADD', a .. ':friends:order', ARGV[6], r_id)
    redis.call('SADD', r .. ':friend_of', a_id)
    vlog_record(a .. ':vlog:friends', r_id, 'insert', ARGV[10], ARGV[11])
    a_added = notify(a, ARGV[15], ARGV[12])
  end
end
local r_result = notify(r, ARGV[13], ARGV[12])
local a_result = notify(a, ARGV[13], ARGV[12])
return {'OK', r_result, a_result, r_added, a_added}
