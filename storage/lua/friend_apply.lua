--! use notify followups relation_step
-- Send (or renew) a friend application from A to B. A primary step on A's slot
-- (docs/CLUSTER.md, "Steps that span entities"): A's sent application and A's
-- notification here; B's received application (':fa:in', its order, the pending
-- set) and B's notification as a follow-up to B.
-- KEYS[1] base of A (applicant)
-- ARGV[1] A id, ARGV[2] B id, ARGV[3] base of B, ARGV[4] encoded application,
-- ARGV[5] time (ms), ARGV[6] encoded notification, ARGV[7] notifications kept,
-- ARGV[8] '1' if B's account exists, ARGV[9] '1' if B blocks A.
-- ARGV[8..9] are B's keys read right before this step (storage/relations.py). That
-- is correct: an account is never deleted, so one seen stays; a block B made and
-- was acknowledged before this command arrived was applied before it was
-- acknowledged, so the read sees it; a block concurrent with this command may be
-- seen or not, and either order is a history the two users could have had (the
-- step answers as if it came first or second).
-- Whether B has A is A's ':friend_of', kept in A's slot by the follow-ups of the
-- steps that change B's list (acknowledged once applied: the same reasoning).
-- Returns {'OK', seq for A, entries...} or {error name, entries...} (relation_step).
local a = KEYS[1]
local a_id, b_id, b = ARGV[1], ARGV[2], ARGV[3]
if ARGV[8] ~= '1' then
  return step_refused(a, 'USER_NOT_FOUND')
end
if ARGV[9] == '1' then
  return step_refused(a, 'BLOCKED_BY_PEER')
end
if redis.call('HEXISTS', a .. ':black', b_id) == 1 then
  return step_refused(a, 'PEER_BLOCKED')
end
if redis.call('HEXISTS', a .. ':friends', b_id) == 1
    and redis.call('SISMEMBER', a .. ':friend_of', b_id) == 1 then
  return step_refused(a, 'ALREADY_FRIENDS')
end
redis.call('HSET', a .. ':fa:out', b_id, ARGV[4])
redis.call('ZADD', a .. ':fa:out:order', ARGV[5], b_id)
local seq_a = notify(a, ARGV[6], ARGV[7])
return step_done(a, {seq_a}, {
  {b,
    {'hset', ':fa:in', a_id, ARGV[4], ''},
    {'zadd', ':fa:in:order', ARGV[5], a_id},
    {'sadd', ':fa:in:pending', a_id},
    {'notify', ARGV[6]}},
})
