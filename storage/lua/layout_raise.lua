-- Raise fields of one hash to the values given, never lowering one (the migration of
-- a store of an earlier layout, storage/layout.py).
-- KEYS[1] the hash; ARGV field, value pairs. Returns how many fields were raised.
local raised = 0
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    raised = raised + 1
  end
end
return raised
