--! use versionlog
-- Write conversation entries of one user, each only if unchanged since read.
-- KEYS[1] user base
-- ARGV[1] version log length, ARGV[2] new version id, then triples:
-- conversation id, entry as read ('' if none), new entry
-- Returns {'OK'} or {'RETRY'} (nothing written).
local user = KEYS[1]
for i = 3, #ARGV, 3 do
  local current = redis.call('HGET', user .. ':conv', ARGV[i]) or ''
  if current ~= ARGV[i + 1] then
    return {'RETRY'}
  end
end
for i = 3, #ARGV, 3 do
  local op = 'update'
  if ARGV[i + 1] == '' then
    op = 'insert'
  end
  redis.call('HSET', user .. ':conv', ARGV[i], ARGV[i + 2])
  vlog_record(user .. ':vlog:convs', ARGV[i], op, ARGV[2], ARGV[1])
end
return {'OK'}
