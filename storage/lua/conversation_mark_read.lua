-- Raise a user's has-read seq of a conversation (never lower it, never past max).
-- KEYS[1] conversation base
-- ARGV[1] user id, ARGV[2] seq (0: the newest)
-- Returns {has_read_seq, max_seq, advanced, cleared}: advanced is 1 when this call
-- raised the stored has-read seq, 0 when it was already at or past the wanted seq;
-- cleared is the seq the user's view starts after.
-- The seqs are in the conversation's ':reads' (field <user id>: has-read seq,
-- 'cleared:<user id>': cleared-up-to), so this is one step on one slot.
local conv, user = KEYS[1], ARGV[1]
local max = tonumber(redis.call('HGET', conv .. ':meta', 'seq') or '0')
local wanted = tonumber(ARGV[2])
if wanted == 0 or wanted > max then
  wanted = max
end
local found = redis.call('HMGET', conv .. ':reads', user, 'cleared:' .. user)
local read = tonumber(found[1] or '0')
local advanced = 0
if wanted > read then
  redis.call('HSET', conv .. ':reads', user, wanted)
  read = wanted
  advanced = 1
end
return {read, max, advanced, tonumber(found[2] or '0')}
