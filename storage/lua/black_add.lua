--! use notify followups relation_step
-- Put B on A's blacklist. The friendship, if any, is kept. A primary step on A's
-- slot (docs/CLUSTER.md, "Steps that span entities"); its follow-up sets the
-- gate's 'black:<A>' to '1' in the pair's conversation, so that the block holds
-- for sends once it is acknowledged.
-- KEYS[1] base of A
-- ARGV[1] B id, ARGV[2] encoded entry, ARGV[3] time (ms), ARGV[4] notifications
-- kept, ARGV[5] notification for A, ARGV[6] A id, ARGV[7] base of the pair's
-- conversation, ARGV[8] '1' if B's account exists (read right before this step:
-- an account is never deleted, so one seen stays)
-- Returns {'OK', seq, entries...}, {'USER_NOT_FOUND' | 'ALREADY_BLOCKED', entries...}
-- (relation_step).
local a = KEYS[1]
if ARGV[8] ~= '1' then
  return step_refused(a, 'USER_NOT_FOUND')
end
if redis.call('HSETNX', a .. ':black', ARGV[1], ARGV[2]) == 0 then
  return step_refused(a, 'ALREADY_BLOCKED')
end
redis.call('ZADD', a .. ':black:order', ARGV[3], ARGV[1])
local seq = notify(a, ARGV[5], ARGV[4])
return step_done(a, {seq}, {gate_followup(ARGV[7], {{'black:' .. ARGV[6], '1'}})})
