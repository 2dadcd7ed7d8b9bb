-- Give up a lease if this node holds it.
-- KEYS[1] lease key; ARGV[1] this node's id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
