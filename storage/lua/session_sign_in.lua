-- Register a signed-in session and end the sessions the multi-login policy
-- displaces, in one step, so concurrent sign-ins on several nodes see each other.
-- KEYS[1] user base
-- ARGV[1] session id, ARGV[2] platform, ARGV[3] node id, ARGV[4] token id,
-- ARGV[5] '1' if the token is new (record it), ARGV[6] its "platform:expires_at_ms",
-- ARGV[7] now (ms), ARGV[8] comma-separated platforms whose sessions are displaced
-- ('*' for all, '' for none)
-- Presence entries are session id -> "platform:node:token id:signed in at (ms)".
-- Returns the displaced sessions as a flat list: session id, node id, ...
local user = KEYS[1]
local presence = user .. ':presence'
local tokens = user .. ':tokens'
local session_id, platform, node_id, token_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local displace = {}
if ARGV[8] == '*' then
  displace = nil
else
  for p in string.gmatch(ARGV[8], '[^,]+') do
    displace[p] = true
  end
end
local out = {}
local entries = redis.call('HGETALL', presence)
for i = 1, #entries, 2 do
  local other, value = entries[i], entries[i + 1]
  local p, node, token = string.match(value, '^([^:]*):([^:]*):([^:]*)')
  if other ~= session_id and (displace == nil or displace[p]) then
    redis.call('HDEL', presence, other)
    if token ~= token_id and token ~= '' then
      redis.call('HDEL', tokens, token)
    end
    table.insert(out, other)
    table.insert(out, node)
  end
end
if ARGV[5] == '1' then
  local now = tonumber(ARGV[7])
  local held = redis.call('HGETALL', tokens)
  for i = 1, #held, 2 do
    local expires = tonumber(string.match(held[i + 1], ':(%d+)$'))
    if expires == nil or expires <= now then
      redis.call('HDEL', tokens, held[i])
    end
  end
  redis.call('HSET', tokens, token_id, ARGV[6])
end
redis.call('HSET', presence, session_id, platform .. ':' .. node_id .. ':' .. token_id .. ':' .. ARGV[7])
return out
