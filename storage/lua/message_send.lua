--! use followups
-- Store a message with the next seq of its conversation, once per client msg id:
-- the primary step of a send, on the conversation's slot only (docs/CLUSTER.md).
-- KEYS[1] conversation base
-- ARGV[1] conversation id, ARGV[2] client msg id, ARGV[3] stored message,
-- ARGV[4] send time (ms), ARGV[5] '1' if it counts as unread, '0' if not,
-- ARGV[6] single-chat checks: '' for none, 'peer' to require that the peer exists
-- and that neither side has blocked the other, 'friends' to also require that
-- both have each other as friends; ARGV[7] sender id, ARGV[8] peer id,
-- ARGV[9..] triples: user id, user base, conversation entry: users who get a
-- conversation entry if they have none (the sender first)
-- Returns {status, seq, {users who do not receive it}, {outbox entries}}:
-- status 'OK' (seq is the new message's), 'DUP' (the first send's seq), or an
-- error name with seq 0; the outbox entries are those the conversation had
-- pending (oldest first), then, for 'OK', this step's own (storage/followups.py):
-- the caller applies them all before answering, so a resend (DUP) or the next send
-- lands what a send whose node died left behind.
--
-- Single-chat checks read '<conv>:gate', kept in the conversation's slot (the
-- fields 'exists' (both accounts exist), 'black:<user>' ('1': that user blocks the
-- other) and 'friend:<user>' ('1': that user has the other as a friend)), written by
-- follow-ups of every friend and blacklist step of the pair, which are applied
-- before those steps are acknowledged, so a block is effective for sends once it
-- is acknowledged. A gate lacking a field needed here answers 'NEED_GATE': the
-- caller reads the users' own entries and fills the absent fields
-- (conversation_gate_init.lua says why that is linearizable).
--
-- ':entered' holds the users known to have a conversation entry; only users not in
-- it get a follow-up (HSETNX of their ':conv' entry with its version-log insert), so
-- a steady-state send is this one step. Entries are never deleted; a step that
-- deleted one would have to take the user out of ':entered' too.
-- ':reads' holds, per user, the has-read seq (field <user id>) and the seq the
-- user's view starts after (field 'cleared:<user id>'); sending implies having read
-- everything before, so the sender's has-read seq is raised here.
local conv = KEYS[1]
local conv_id, cmid, sender_id, peer_id = ARGV[1], ARGV[2], ARGV[7], ARGV[8]
local entries = followups_pending(conv)
local first = redis.call('HGET', conv .. ':cmid', cmid)
if first then
  return {'DUP', tonumber(first), {}, entries}
end
local checks = ARGV[6]
if checks ~= '' then
  local gate = conv .. ':gate'
  local fields = {'exists', 'black:' .. peer_id, 'black:' .. sender_id}
  if checks == 'friends' then
    table.insert(fields, 'friend:' .. sender_id)
    table.insert(fields, 'friend:' .. peer_id)
  end
  local values = redis.call('HMGET', gate, unpack(fields))
  for i = 1, #fields do
    if not values[i] then
      return {'NEED_GATE', 0, {}, entries}
    end
  end
  if values[2] == '1' then
    return {'BLOCKED_BY_PEER', 0, {}, entries}
  end
  if values[3] == '1' then
    return {'PEER_BLOCKED', 0, {}, entries}
  end
  if checks == 'friends' and (values[4] ~= '1' or values[5] ~= '1') then
    return {'NOT_FRIENDS', 0, {}, entries}
  end
end
local seq = redis.call('HINCRBY', conv .. ':meta', 'seq', 1)
redis.call('HSET', conv .. ':msgs', seq, ARGV[3])
redis.call('HSET', conv .. ':cmid', cmid, seq)
redis.call('ZADD', conv .. ':times', ARGV[4], seq)
if ARGV[5] == '0' then
  redis.call('ZADD', conv .. ':uncounted', seq, seq)
end
local read = tonumber(redis.call('HGET', conv .. ':reads', sender_id) or '0')
if seq > read then
  redis.call('HSET', conv .. ':reads', sender_id, seq)
end
local list = {}
for i = 9, #ARGV, 3 do
  if redis.call('SADD', conv .. ':entered', ARGV[i]) == 1 then
    table.insert(list, {ARGV[i + 1], {'hsetnx', ':conv', conv_id, ARGV[i + 2], ':vlog:convs'}})
  end
end
table.insert(entries, followups_record(conv, list))
return {'OK', seq, redis.call('SMEMBERS', conv .. ':not_receiving'), entries}
