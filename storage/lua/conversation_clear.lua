-- Start a user's view of a conversation after its current max seq.
-- KEYS[1] user base, KEYS[2] conversation base
-- ARGV[1] conversation id
-- Returns the new min seq.
local max = tonumber(redis.call('HGET', KEYS[2] .. ':meta', 'seq') or '0')
redis.call('HSET', KEYS[1] .. ':cleared', ARGV[1], max)
local read = tonumber(redis.call('HGET', KEYS[1] .. ':reads', ARGV[1]) or '0')
if max > read then
  redis.call('HSET', KEYS[1] .. ':reads', ARGV[1], max)
end
return max
