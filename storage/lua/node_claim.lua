-- Claim a node id for one running instance of a node (one slot, the node's: its
-- entry in the set of nodes is added by a plain ZADD in the same batch).
-- KEYS[1] node key
-- ARGV[1] this instance's record, ARGV[2] TTL (s), ARGV[3] the record of an earlier
-- instance known to be gone, which may be replaced ('' for none)
-- The key's value names the instance that holds the id; it expires unless that
-- instance renews it with its heartbeat (node_beat.lua).
-- Returns '' when claimed, else the record of the instance that holds the id.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[3] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ''
