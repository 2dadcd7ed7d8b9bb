-- Claim or renew the lease naming the node that owns an entity's actor.
-- KEYS[1] lease key
-- ARGV[1] this node's id, ARGV[2] lease time (ms), ARGV[3] key prefix (to find
-- the owner's node key)
-- The lease is taken when free, renewed when held by this node, and taken over
-- when the node holding it has stopped heartbeating (its node key expired).
-- Returns {the owner after the step, the gone node it was taken over from or ''}.
local owner = redis.call('GET', KEYS[1])
if (not owner) or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], ''}
end
if redis.call('EXISTS', ARGV[3] .. 'node:' .. owner) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], owner}
end
return {owner, ''}
