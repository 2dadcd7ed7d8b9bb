--! use versionlog notify
-- One change to a group, with its version logs and notifications, in one step.
-- The group's actor builds the list of writes (storage/groups.py, GroupStep);
-- this script checks that the group is still at the revision the actor read,
-- checks that the users it adds exist, and then makes every write.
--
-- KEYS[1] group base G; KEYS[2..] base of each user the step touches.
-- ARGV[1] expected revision of G ('new': G must not exist yet), ARGV[2] group id,
-- ARGV[3] fresh version id (for logs created by this step), ARGV[4] log length,
-- ARGV[5] notifications kept per user; then operations, each a name and its
-- arguments (k is an index into KEYS):
--   account k                      the user must exist
--   info record                    G:info = record
--   mput user record op            G:members[user] = record; member log op (insert|update)
--   mdel user                      remove from G:members; member log delete
--   jput k record op joined_at mgr the user's joined-group entry; log op; mgr '1'
--                                  puts the group in the user's managed set
--   jtouch k                       the user's joined-group log: the group was updated
--   jdel k                         remove the group from the user's lists; log delete
--   app user record created_at pending k
--                                  the application of user (KEYS[k]), on both sides
--   ntf payload n k1 .. kn         append payload to n users' notification logs
-- Returns {'OK', new revision, seq, seq, ...} (a seq per ntf recipient, in order),
-- {'RETRY'} when G changed since it was read, {'GROUP_EXISTS'}, or
-- {'USER_NOT_FOUND', k}.
local g, gid, vid, loglen, keep = KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local arity = {account = 1, info = 1, mput = 3, mdel = 1, jput = 5, jtouch = 1, jdel = 1,
  app = 5, conv = 2}

local current = tonumber(redis.call('GET', g .. ':rev') or '0')
if ARGV[1] == 'new' then
  if redis.call('EXISTS', g .. ':info') == 1 then
    return {'GROUP_EXISTS'}
  end
elseif tonumber(ARGV[1]) ~= current then
  return {'RETRY'}
end

-- First pass: check every operation before writing anything.
local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'ntf' then
    i = i + 3 + tonumber(ARGV[i + 2])
  elseif arity[op] then
    if op == 'account' then
      local k = tonumber(ARGV[i + 1])
      if redis.call('EXISTS', KEYS[k] .. ':account') == 0 then
        return {'USER_NOT_FOUND', k}
      end
    end
    i = i + 1 + arity[op]
  else
    return redis.error_reply('group_step: unknown operation ' .. tostring(op))
  end
end

local out = {'OK', 0}
local members = g .. ':members'
local member_log = g .. ':vlog:members'
i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'info' then
    redis.call('SET', g .. ':info', ARGV[i + 1])
  elseif op == 'mput' then
    redis.call('HSET', members, ARGV[i + 1], ARGV[i + 2])
    vlog_record(member_log, ARGV[i + 1], ARGV[i + 3], vid .. ':m', loglen)
  elseif op == 'mdel' then
    if redis.call('HDEL', members, ARGV[i + 1]) == 1 then
      vlog_record(member_log, ARGV[i + 1], 'delete', vid .. ':m', loglen)
    end
  elseif op == 'jput' then
    local u = KEYS[tonumber(ARGV[i + 1])]
    redis.call('HSET', u .. ':groups:records', gid, ARGV[i + 2])
    redis.call('ZADD', u .. ':groups', ARGV[i + 4], gid)
    vlog_record(u .. ':vlog:groups', gid, ARGV[i + 3], vid .. ':' .. ARGV[i + 1], loglen)
    if ARGV[i + 5] == '1' then
      redis.call('SADD', u .. ':groups:managed', gid)
    else
      redis.call('SREM', u .. ':groups:managed', gid)
    end
  elseif op == 'jtouch' then
    local u = KEYS[tonumber(ARGV[i + 1])]
    vlog_record(u .. ':vlog:groups', gid, 'update', vid .. ':' .. ARGV[i + 1], loglen)
  elseif op == 'jdel' then
    local u = KEYS[tonumber(ARGV[i + 1])]
    -- Remember how far the group's conversation went while they were a member.
    local prefix = string.sub(g, 1, #g - #('{g:' .. gid .. '}'))
    local conv_seq = redis.call('HGET', prefix .. '{c:sg_' .. gid .. '}:meta', 'seq') or '0'
    redis.call('HSET', u .. ':groups:left', gid, conv_seq)
    if redis.call('HDEL', u .. ':groups:records', gid) == 1 then
      redis.call('ZREM', u .. ':groups', gid)
      redis.call('SREM', u .. ':groups:managed', gid)
      vlog_record(u .. ':vlog:groups', gid, 'delete', vid .. ':' .. ARGV[i + 1], loglen)
    end
  elseif op == 'conv' then
    -- A joining member gets the group's conversation in their list (kept after they
    -- leave, so its history stays listed).
    local u = KEYS[tonumber(ARGV[i + 1])]
    local conv_id = 'sg_' .. gid
    redis.call('HDEL', u .. ':groups:left', gid)
    if redis.call('HSETNX', u .. ':conv', conv_id, ARGV[i + 2]) == 1 then
      vlog_record(u .. ':vlog:convs', conv_id, 'insert', vid .. ':c' .. ARGV[i + 1], loglen)
    end
  elseif op == 'app' then
    local user, record, at = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local u = KEYS[tonumber(ARGV[i + 5])]
    redis.call('HSET', g .. ':apps', user, record)
    redis.call('ZADD', g .. ':apps:order', at, user)
    if ARGV[i + 4] == '1' then
      redis.call('SADD', g .. ':apps:pending', user)
    else
      redis.call('SREM', g .. ':apps:pending', user)
    end
    redis.call('HSET', u .. ':ga', gid, record)
    redis.call('ZADD', u .. ':ga:order', at, gid)
  elseif op == 'ntf' then
    local n = tonumber(ARGV[i + 2])
    for j = 1, n do
      table.insert(out, notify(KEYS[tonumber(ARGV[i + 2 + j])], ARGV[i + 1], keep))
    end
    i = i + 3 + n
  end
  if op ~= 'ntf' then
    i = i + 1 + arity[op]
  end
end
out[2] = redis.call('INCR', g .. ':rev')
return out
