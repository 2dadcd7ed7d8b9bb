-- Compare a starting node's fingerprint (the settings every node of a cluster must
-- share) with the cluster's.
-- KEYS[1] fingerprint hash
-- ARGV[1] '1' if another node is live (read just before: the node keys are each in
-- their own slot), ARGV[2..] field, value pairs
-- With another node live and some field different: returns {1, field, cluster value,
-- ...} and changes nothing. Otherwise records this node's values and returns {0,
-- field, previous value, ...} for the fields it changed (settings changed while no
-- node ran).
local live = ARGV[1] == '1'
local differ = {}
for i = 2, #ARGV, 2 do
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
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
table.insert(differ, 1, 0)
return differ
