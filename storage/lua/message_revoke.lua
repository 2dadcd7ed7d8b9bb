-- Replace a message by its revoked form and append the revoke notice, in one step.
-- KEYS[1] conversation base
-- ARGV[1] seq to revoke, ARGV[2] the message as read (compare-and-set),
-- ARGV[3] revoked form, ARGV[4] notice client msg id, ARGV[5] stored notice,
-- ARGV[6] time (ms)
-- Returns {'OK', notice seq, {users who do not receive it}} (as message_send.lua),
-- {'RETRY'} or {'NO_SUCH_MESSAGE'}.
local conv = KEYS[1]
local current = redis.call('HGET', conv .. ':msgs', ARGV[1])
if not current then
  return {'NO_SUCH_MESSAGE'}
end
if current ~= ARGV[2] then
  return {'RETRY'}
end
redis.call('HSET', conv .. ':msgs', ARGV[1], ARGV[3])
local seq = redis.call('HINCRBY', conv .. ':meta', 'seq', 1)
redis.call('HSET', conv .. ':msgs', seq, ARGV[5])
redis.call('HSET', conv .. ':cmid', ARGV[4], seq)
redis.call('ZADD', conv .. ':times', ARGV[6], seq)
redis.call('ZADD', conv .. ':uncounted', seq, seq)
return {'OK', seq, redis.call('SMEMBERS', conv .. ':not_receiving')}
