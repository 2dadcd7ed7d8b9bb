-- Append a notification to a user's log and return its seq (1, 2, 3, ...).
-- <user>:ntf is a hash seq -> encoded notification; <user>:ntf:meta holds the
-- newest seq ('seq') and the oldest one kept ('min'). At most 'keep' are kept.
local function notify(user_base, payload, keep)
  local meta = user_base .. ':ntf:meta'
  local store = user_base .. ':ntf'
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('HSET', store, seq, payload)
  local min = tonumber(redis.call('HGET', meta, 'min') or '1')
  local new_min = seq - tonumber(keep) + 1
  if new_min > min then
    for s = min, new_min - 1 do
      redis.call('HDEL', store, s)
    end
    min = new_min
  end
  redis.call('HSET', meta, 'min', min)
  return seq
end
