--! use versionlog followups
-- Write conversation entries of one user, each only if unchanged since read: the
-- primary step, on the user's slot. Each conversation's set of users who do not
-- receive it (recv_opt 1, ':not_receiving') and of users who have an entry
-- (':entered', message_send.lua) are follow-ups on the conversation's slot.
-- KEYS[1] user base
-- ARGV[1] version log length, ARGV[2] new version id, ARGV[3] user id, then
-- quintuples: conversation id, conversation base, entry as read ('' if none),
-- new entry, '1' if the new entry has recv_opt 1 (do not receive), '0' if not
-- Returns {'OK' or 'RETRY' (nothing written), outbox entries}: those the user had
-- pending (oldest first), then, for 'OK', this step's own.
local user = KEYS[1]
local user_id = ARGV[3]
local entries = followups_pending(user)
for i = 4, #ARGV, 5 do
  local current = redis.call('HGET', user .. ':conv', ARGV[i]) or ''
  if current ~= ARGV[i + 2] then
    return {'RETRY', entries}
  end
end
local list = {}
for i = 4, #ARGV, 5 do
  local op = 'update'
  if ARGV[i + 2] == '' then
    op = 'insert'
  end
  redis.call('HSET', user .. ':conv', ARGV[i], ARGV[i + 3])
  vlog_record(user .. ':vlog:convs', ARGV[i], op, ARGV[2], ARGV[1])
  local receiving = ARGV[i + 4] == '1' and 'sadd' or 'srem'
  table.insert(list, {ARGV[i + 1], {receiving, ':not_receiving', user_id},
    {'sadd', ':entered', user_id}})
end
table.insert(entries, followups_record(user, list))
return {'OK', entries}
