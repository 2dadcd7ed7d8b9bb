-- Claim or renew the lease naming the node that owns an entity's actor.
-- KEYS[1] lease key
-- ARGV[1] this node's id, ARGV[2] lease time (ms), ARGV[3] the node this one may take
-- the lease over from ('' for none): the caller found that node's key gone (read
-- before, in another slot), so this is a compare-and-set on the holder read then.
-- The lease is taken when free, renewed when held by this node, and taken over
-- when it is still held by ARGV[3].
-- Returns {the owner after the step, the gone node it was taken over from or ''}.
local owner = redis.call('GET', KEYS[1])
if (not owner) or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], ''}
end
if ARGV[3] ~= '' and owner == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], owner}
end
return {owner, ''}
