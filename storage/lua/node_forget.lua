-- Remove a gone node's sessions from presence, and its record.
-- KEYS[1] node key, KEYS[2] the node's session set, KEYS[3] sorted set of nodes
-- ARGV[1] node id, ARGV[2] the record the caller may remove ('' : only a node whose
-- key has expired), ARGV[3] key prefix, ARGV[4] '1' to keep the node's key and entry
-- (a node's new instance clearing the sessions of the one before)
-- Nothing is removed while another instance holds the id: returns -1. Else the number
-- of sessions removed.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[2] then
  return -1
end
local listed = redis.call('SMEMBERS', KEYS[2])
for _, item in ipairs(listed) do
  local tab = string.find(item, '\t', 1, true)
  if tab then
    local user = string.sub(item, 1, tab - 1)
    redis.call('HDEL', ARGV[3] .. '{u:' .. user .. '}:presence', string.sub(item, tab + 1))
  end
end
redis.call('DEL', KEYS[2])
if ARGV[4] ~= '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return #listed
