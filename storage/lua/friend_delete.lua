--! use versionlog notify followups relation_step
-- Remove B from A's friend list, and with both_sides A from B's. A primary step on
-- A's slot (docs/CLUSTER.md, "Steps that span entities"): A's list, its version
-- log, who has A (':friend_of': with both_sides B no longer does) and A's
-- notification here; as a follow-up to B: B's ':friend_of' (A no longer has B)
-- and, with both_sides, B's entry for A (its order, version log and notification
-- only if it was there); as a follow-up to the pair's conversation, the gate's
-- 'friend:<A>' (and 'friend:<B>' if B's entry was deleted) set to '0'.
-- Whether B has A is A's ':friend_of', kept in A's slot by the steps that change
-- B's list (see friend_respond.lua for why that is correct): B's entry is deleted
-- only if it says so, which keeps B's list and A's ':friend_of' equal when B
-- adds A meanwhile.
-- KEYS[1] base of A
-- ARGV[1] A id, ARGV[2] B id, ARGV[3] base of B, ARGV[4] base of the pair's
-- conversation, ARGV[5] '1' both sides, ARGV[6] new version id for A's log,
-- ARGV[7] log length, ARGV[8] notifications kept, ARGV[9] notification for A,
-- ARGV[10] notification for B
-- Returns {'OK', seq for A, '1' if B's entry was deleted, entries...} or
-- {'NOT_FRIENDS', entries...} (relation_step). B's ops: srem [, hdel, when, zrem,
-- notify].
local a = KEYS[1]
local a_id, b_id, b, gate = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HDEL', a .. ':friends', b_id) == 0 then
  return step_refused(a, 'NOT_FRIENDS')
end
redis.call('ZREM', a .. ':friends:order', b_id)
vlog_record(a .. ':vlog:friends', b_id, 'delete', ARGV[6], ARGV[7])
local seq_a = notify(a, ARGV[9], ARGV[8])
local to_b = {b, {'srem', ':friend_of', a_id}}
local fields = {{'friend:' .. a_id, '0'}}
local sent = '0'
if ARGV[5] == '1' and redis.call('SREM', a .. ':friend_of', b_id) == 1 then
  sent = '1'
  table.insert(to_b, {'hdel', ':friends', a_id, ':vlog:friends'})
  table.insert(to_b, {'when', 2})
  table.insert(to_b, {'zrem', ':friends:order', a_id})
  table.insert(to_b, {'notify', ARGV[10]})
  table.insert(fields, {'friend:' .. b_id, '0'})
end
return step_done(a, {seq_a, sent}, {to_b, gate_followup(gate, fields)})
