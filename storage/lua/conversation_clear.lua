-- Start a user's view of a conversation after its current max seq (and count
-- everything up to it as read).
-- KEYS[1] conversation base
-- ARGV[1] user id
-- Returns {the new min seq, the has-read seq}.
-- Both are in the conversation's ':reads' (conversation_mark_read.lua): one slot.
local conv, user = KEYS[1], ARGV[1]
local max = tonumber(redis.call('HGET', conv .. ':meta', 'seq') or '0')
redis.call('HSET', conv .. ':reads', 'cleared:' .. user, max)
local read = tonumber(redis.call('HGET', conv .. ':reads', user) or '0')
if max > read then
  redis.call('HSET', conv .. ':reads', user, max)
  read = max
end
return {max, read}
