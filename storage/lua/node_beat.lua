-- A node's heartbeat: renew its claim on its id and read the sessions it is listed
-- as holding, in one step (one slot, the node's: its score in the set of nodes is
-- renewed by a plain ZADD in the same batch).
-- KEYS[1] node key, KEYS[2] the node's session set
-- ARGV[1] this instance's record, ARGV[2] TTL (s)
-- Returns {-1, record} when another instance holds the id now (nothing written);
-- else {1, members} when the key still named this instance, {0, members} when it had
-- expired (the node had been given up).
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {-1, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {holder and 1 or 0, redis.call('SMEMBERS', KEYS[2])}
