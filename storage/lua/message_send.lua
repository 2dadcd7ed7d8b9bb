--! use versionlog
-- Store a message with the next seq of its conversation, once per client msg id.
-- KEYS[1] conversation base; KEYS[2] sender's user base;
-- KEYS[3..] bases of users who get a conversation entry if they have none
-- ARGV[1] conversation id, ARGV[2] client msg id, ARGV[3] stored message,
-- ARGV[4] send time (ms), ARGV[5] '1' if it counts as unread, '0' if not,
-- ARGV[6] version log length, ARGV[7] new version id,
-- ARGV[8] single-chat checks: '' for none, 'peer' to require that KEYS[3]
-- exists and that neither side has blocked the other, 'friends' to also require
-- that both have each other as friends; ARGV[9] sender id, ARGV[10] peer id,
-- ARGV[11] '1' to return the nodes holding sessions of the users of KEYS[2..]
-- (from their ':presence' hashes, values '<platform>:<node>:<token id>:<since>'), '0' not to;
-- ARGV[12..] conversation entry for KEYS[2], KEYS[3], ... in that order
-- Returns {'OK', seq, {users who do not receive it}, {nodes}} (the conversation's
-- ':not_receiving' set: users whose entry has recv_opt 1), {'DUP', seq of the
-- first send} or {error name}.
local conv = KEYS[1]
local conv_id, cmid = ARGV[1], ARGV[2]
local first = redis.call('HGET', conv .. ':cmid', cmid)
if first then
  return {'DUP', tonumber(first)}
end
if ARGV[8] ~= '' then
  local sender, peer = KEYS[2], KEYS[3]
  local sender_id, peer_id = ARGV[9], ARGV[10]
  if redis.call('EXISTS', peer .. ':account') == 0 then
    return {'USER_NOT_FOUND'}
  end
  if redis.call('HEXISTS', peer .. ':black', sender_id) == 1 then
    return {'BLOCKED_BY_PEER'}
  end
  if redis.call('HEXISTS', sender .. ':black', peer_id) == 1 then
    return {'PEER_BLOCKED'}
  end
  if ARGV[8] == 'friends' and (redis.call('HEXISTS', sender .. ':friends', peer_id) == 0
      or redis.call('HEXISTS', peer .. ':friends', sender_id) == 0) then
    return {'NOT_FRIENDS'}
  end
end
local seq = redis.call('HINCRBY', conv .. ':meta', 'seq', 1)
redis.call('HSET', conv .. ':msgs', seq, ARGV[3])
redis.call('HSET', conv .. ':cmid', cmid, seq)
redis.call('ZADD', conv .. ':times', ARGV[4], seq)
if ARGV[5] == '0' then
  redis.call('ZADD', conv .. ':uncounted', seq, seq)
end
-- Sending implies having read everything before.
local sender = KEYS[2]
local read = tonumber(redis.call('HGET', sender .. ':reads', conv_id) or '0')
if seq > read then
  redis.call('HSET', sender .. ':reads', conv_id, seq)
end
for i = 2, #KEYS do
  if redis.call('HSETNX', KEYS[i] .. ':conv', conv_id, ARGV[10 + i]) == 1 then
    vlog_record(KEYS[i] .. ':vlog:convs', conv_id, 'insert', ARGV[7], ARGV[6])
  end
end
local nodes = {}
if ARGV[11] == '1' then
  local seen = {}
  for i = 2, #KEYS do
    for _, entry in ipairs(redis.call('HVALS', KEYS[i] .. ':presence')) do
      local node = string.match(entry, '^[^:]*:([^:]*):')
      if node and not seen[node] then
        seen[node] = true
        table.insert(nodes, node)
      end
    end
  end
end
return {'OK', seq, redis.call('SMEMBERS', conv .. ':not_receiving'), nodes}
