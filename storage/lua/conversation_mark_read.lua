-- Raise a user's has-read seq of a conversation (never lower it, never past max).
-- KEYS[1] user base, KEYS[2] conversation base
-- ARGV[1] conversation id, ARGV[2] seq (0: the newest)
-- Returns {has_read_seq, max_seq, advanced}: advanced is 1 when this call raised
-- the stored has-read seq, 0 when it was already at or past the wanted seq.
local max = tonumber(redis.call('HGET', KEYS[2] .. ':meta', 'seq') or '0')
local wanted = tonumber(ARGV[2])
if wanted == 0 or wanted > max then
  wanted = max
end
local read = tonumber(redis.call('HGET', KEYS[1] .. ':reads', ARGV[1]) or '0')
local advanced = 0
if wanted > read then
  redis.call('HSET', KEYS[1] .. ':reads', ARGV[1], wanted)
  read = wanted
  advanced = 1
end
return {read, max, advanced}
