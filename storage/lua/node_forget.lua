-- The last step of giving a gone node up (storage/presence.py, forget_node), once its
-- sessions' presence entries are removed: remove its session set and its record,
-- together, unless another instance holds the id now.
-- KEYS[1] node key, KEYS[2] the node's session set
-- ARGV[1] the record the caller may remove ('' : only a node whose key has expired),
-- ARGV[2] '1' to keep the node's key (a node's new instance clearing the sessions of
-- the one before)
-- Returns -1 (nothing removed) while another instance holds the id, else 0.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[2])
if ARGV[2] ~= '1' then
  redis.call('DEL', KEYS[1])
end
return 0
