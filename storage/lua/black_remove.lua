--! use notify followups relation_step
-- Take B off A's blacklist. A primary step on A's slot; its follow-up sets the
-- gate's 'black:<A>' to '0' in the pair's conversation.
-- KEYS[1] base of A
-- ARGV[1] B id, ARGV[2] notifications kept, ARGV[3] notification for A,
-- ARGV[4] A id, ARGV[5] base of the pair's conversation
-- Returns {'OK', seq, entries...} or {'NOT_BLOCKED', entries...} (relation_step).
local a = KEYS[1]
if redis.call('HDEL', a .. ':black', ARGV[1]) == 0 then
  return step_refused(a, 'NOT_BLOCKED')
end
redis.call('ZREM', a .. ':black:order', ARGV[1])
local seq = notify(a, ARGV[3], ARGV[2])
return step_done(a, {seq}, {gate_followup(ARGV[5], {{'black:' .. ARGV[4], '0'}})})
