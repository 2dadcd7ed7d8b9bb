--! use versionlog
-- Write conversation entries of one user, each only if unchanged since read, and
-- keep each conversation's set of users who do not receive it (recv_opt 1).
-- KEYS[1] user base; KEYS[2..] base of each conversation written, in ARGV order
-- ARGV[1] version log length, ARGV[2] new version id, ARGV[3] user id, then quads:
-- conversation id, entry as read ('' if none), new entry,
-- '1' if the new entry has recv_opt 1 (do not receive), '0' if not
-- Returns {'OK'} or {'RETRY'} (nothing written).
local user = KEYS[1]
local user_id = ARGV[3]
for i = 4, #ARGV, 4 do
  local current = redis.call('HGET', user .. ':conv', ARGV[i]) or ''
  if current ~= ARGV[i + 1] then
    return {'RETRY'}
  end
end
for i = 4, #ARGV, 4 do
  local op = 'update'
  if ARGV[i + 1] == '' then
    op = 'insert'
  end
  redis.call('HSET', user .. ':conv', ARGV[i], ARGV[i + 2])
  vlog_record(user .. ':vlog:convs', ARGV[i], op, ARGV[2], ARGV[1])
  local conv = KEYS[2 + (i - 4) / 4]
  if ARGV[i + 3] == '1' then
    redis.call('SADD', conv .. ':not_receiving', user_id)
  else
    redis.call('SREM', conv .. ':not_receiving', user_id)
  end
end
return {'OK'}
