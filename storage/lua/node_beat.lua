-- A node's heartbeat: renew its claim on its id and read the sessions it is listed
-- as holding, in one step.
-- KEYS[1] node key, KEYS[2] sorted set of nodes, KEYS[3] the node's session set
-- ARGV[1] this instance's record, ARGV[2] TTL (s), ARGV[3] now (ms), ARGV[4] node id
-- Returns {-1, record} when another instance holds the id now (nothing written);
-- else {1, members} when the key still named this instance, {0, members} when it had
-- expired (the node had been given up).
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {-1, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {holder and 1 or 0, redis.call('SMEMBERS', KEYS[3])}
