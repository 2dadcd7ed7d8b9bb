-- Compare a starting node's fingerprint (the settings every node of a cluster must
-- share) with the cluster's.
-- KEYS[1] fingerprint hash, KEYS[2] sorted set of nodes
-- ARGV[1] this node's id, ARGV[2] key prefix, ARGV[3..] field, value pairs
-- With another node live and some field different: returns {1, field, cluster value,
-- ...} and changes nothing. Otherwise records this node's values and returns {0,
-- field, previous value, ...} for the fields it changed (settings changed while no
-- node ran).
local live = false
for _, node in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if node ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. 'node:' .. node) == 1 then
    live = true
    break
  end
end
local differ = {}
for i = 3, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current and current ~= ARGV[i + 1] then
    table.insert(differ, ARGV[i])
    table.insert(differ, current)
  end
end
if live and #differ > 0 then
  table.insert(differ, 1, 1)
  return differ
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
table.insert(differ, 1, 0)
return differ
