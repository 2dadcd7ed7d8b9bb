--! use versionlog followups
-- One change to a group: the primary step, on the group's slot alone (docs/CLUSTER.md,
-- "Steps that span entities"). The group's actor builds it (storage/groups.py,
-- GroupStep); this script checks that the group is still at the revision the actor
-- read (compare-and-set), writes the group's info, members, member log and
-- applications, and records the writes due in each user's slot (joined-group entry
-- and its log, managed set, the user's side of an application, conversation entry,
-- notifications) as follow-ups, which the caller applies before it answers.
--
-- Checks on other slots are made before this step, by the caller:
-- * that a user being added exists: an EXISTS of '{u:<id>}:account' read after the
--   command arrived. Accounts are never deleted, so one found then still exists now.
-- * how far the group's conversation went when a member leaves (their
--   ':groups:left' entry): read from '{c:sg_<id>}:meta' by the group's actor, which
--   also runs the group's sends, one command at a time, so no send moves it between
--   the read and this step.
--
-- KEYS[1] group base G.
-- ARGV[1] expected revision of G ('new': G must not exist yet), ARGV[2] fresh version
-- id (for a member log created here), ARGV[3] log length, ARGV[4] n: how many
-- arguments the group's operations take; ARGV[5 .. 4+n] the group's operations:
--   info record                  G:info = record
--   mput user record op          G:members[user] = record; member log op (insert|update)
--   mdel user                    remove from G:members; member log delete
--   app user record created_at pending
--                                the group's side of the application of user
-- then the follow-ups, per user: user base, count c, and c tokens (ops of
-- followup_apply.lua).
-- Returns {'OK', new revision, entry, ...}, {'RETRY', entry, ...} when G changed since
-- it was read, or {'GROUP_EXISTS', entry, ...}: the entries are the group's outbox
-- entries still pending (a node died before applying them), oldest first, then (OK
-- only) this step's own ('' if it has no follow-ups).
local g, vid, loglen = KEYS[1], ARGV[2], ARGV[3]
local last_op = 4 + tonumber(ARGV[4])
local arity = {info = 1, mput = 3, mdel = 1, app = 4}

local function refused(status)
  local out = {status}
  for _, entry in ipairs(followups_pending(g)) do
    table.insert(out, entry)
  end
  return out
end

local current = tonumber(redis.call('GET', g .. ':rev') or '0')
if ARGV[1] == 'new' then
  if current ~= 0 or redis.call('EXISTS', g .. ':info') == 1 then
    return refused('GROUP_EXISTS')
  end
elseif tonumber(ARGV[1]) ~= current then
  return refused('RETRY')
end

local i = 5
while i <= last_op do
  local width = arity[ARGV[i]]
  if not width or i + width > last_op then
    return redis.error_reply('group_step: malformed operation at argument ' .. i)
  end
  i = i + 1 + width
end
local list = {}
while i <= #ARGV do
  local count = tonumber(ARGV[i + 1])
  if not count or i + 1 + count > #ARGV then
    return redis.error_reply('group_step: malformed follow-up at argument ' .. i)
  end
  table.insert(list, {ARGV[i], {unpack(ARGV, i + 2, i + 1 + count)}})
  i = i + 2 + count
end

local members = g .. ':members'
local member_log = g .. ':vlog:members'
i = 5
while i <= last_op do
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
  elseif op == 'app' then
    local user, record, at = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    redis.call('HSET', g .. ':apps', user, record)
    redis.call('ZADD', g .. ':apps:order', at, user)
    if ARGV[i + 4] == '1' then
      redis.call('SADD', g .. ':apps:pending', user)
    else
      redis.call('SREM', g .. ':apps:pending', user)
    end
  end
  i = i + 1 + arity[op]
end
local rev = redis.call('INCR', g .. ':rev')
local out = {'OK', rev}
for _, entry in ipairs(followups_pending(g)) do
  table.insert(out, entry)
end
table.insert(out, followups_record(g, list))
return out
