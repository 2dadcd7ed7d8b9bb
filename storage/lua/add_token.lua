-- Record a newly issued token and drop the expired ones.
-- KEYS[1] tokens hash
-- ARGV[1] token id, ARGV[2] "platform:expires_at_ms", ARGV[3] now in ms,
-- ARGV[4..] token ids to revoke in the same step (sessions kicked by this login)
local entries = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[3])
for i = 1, #entries, 2 do
  local value = entries[i + 1]
  local expires = tonumber(string.sub(value, string.find(value, ':') + 1))
  if expires == nil or expires <= now then
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
for i = 4, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
