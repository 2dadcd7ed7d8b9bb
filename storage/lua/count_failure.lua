-- Count one failed attempt in a fixed window.
-- KEYS[1] counter; ARGV[1] window in seconds
-- Returns the count in the current window.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
