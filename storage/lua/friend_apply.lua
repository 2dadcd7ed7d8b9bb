--! use notify
-- Send (or renew) a friend application from A to B.
-- KEYS[1] base of A (applicant), KEYS[2] base of B (target)
-- ARGV[1] A id, ARGV[2] B id, ARGV[3] encoded application, ARGV[4] time (ms),
-- ARGV[5] encoded notification, ARGV[6] notifications kept per user
-- Returns {'OK', seq for B, seq for A} or {error name}.
local a, b = KEYS[1], KEYS[2]
local a_id, b_id = ARGV[1], ARGV[2]
if redis.call('EXISTS', b .. ':account') == 0 then
  return {'USER_NOT_FOUND'}
end
if redis.call('HEXISTS', b .. ':black', a_id) == 1 then
  return {'BLOCKED_BY_PEER'}
end
if redis.call('HEXISTS', a .. ':black', b_id) == 1 then
  return {'PEER_BLOCKED'}
end
if redis.call('HEXISTS', a .. ':friends', b_id) == 1
    and redis.call('HEXISTS', b .. ':friends', a_id) == 1 then
  return {'ALREADY_FRIENDS'}
end
redis.call('HSET', b .. ':fa:in', a_id, ARGV[3])
redis.call('ZADD', b .. ':fa:in:order', ARGV[4], a_id)
redis.call('SADD', b .. ':fa:in:pending', a_id)
redis.call('HSET', a .. ':fa:out', b_id, ARGV[3])
redis.call('ZADD', a .. ':fa:out:order', ARGV[4], b_id)
local seq_b = notify(b, ARGV[5], ARGV[6])
local seq_a = notify(a, ARGV[5], ARGV[6])
return {'OK', seq_b, seq_a}
