--! use versionlog notify followups relation_step
-- Accept or refuse the pending application from A to R; on accept, make both
-- sides friends (an existing entry is kept as it is). A primary step on R's slot
-- (docs/CLUSTER.md, "Steps that span entities"): the application R received, R's
-- friend entry for A, who has R (':friend_of': A does now) and R's notifications
-- here; as a follow-up to A: A's sent application (only if it is still the one R
-- answered: A may have renewed it meanwhile), on accept A's ':friend_of' and, if
-- A does not have R yet, A's entry for R (its order, version log and friend-added
-- notification), then A's notification of the answer; as a follow-up to the
-- pair's conversation, the gate's 'friend:<R>' and 'friend:<A>' set to '1', each
-- if this step added that entry (a field only ever changes with its list, so two
-- steps never write different values to one field in an order the list did not see).
-- Whether A has R is R's ':friend_of', kept in R's slot by the steps that change
-- A's list: a change acknowledged before this command arrived is in it (a step is
-- acknowledged once its follow-ups are applied); one concurrent with this command
-- is in it or not, and each order is a history the two could have had. Deciding
-- here, rather than setting A's entry if absent whatever it is, keeps A's list and
-- R's ':friend_of' equal when A deletes R meanwhile.
-- KEYS[1] base of R (responder)
-- ARGV[1] R id, ARGV[2] A id, ARGV[3] base of A, ARGV[4] base of the pair's
-- conversation, ARGV[5] the application as read (compare-and-set),
-- ARGV[6] the handled application, ARGV[7] '1' accept / '0' refuse, ARGV[8] time
-- (ms), ARGV[9] entry for R's list, ARGV[10] entry for A's list, ARGV[11] new
-- version id for R's log, ARGV[12] log length, ARGV[13] notifications kept,
-- ARGV[14] result notification (1201/1202), ARGV[15] friend-added notification
-- for R, ARGV[16] for A, ARGV[17] '1' if A blocks R.
-- ARGV[17] is A's blacklist read right before this step (storage/relations.py):
-- a block A made and was acknowledged before this command arrived is seen (it was
-- applied before it was acknowledged); a block concurrent with this command may
-- be seen or not, and either order is a history the two could have had.
-- The application R received is R's own key: the compare-and-set on it (RETRY)
-- detects any change since it was read, an answer from another of R's devices or
-- A's renewal alike.
-- Returns {'OK', seq R result, seq R added or 0, '1' if A's entry for R was sent,
-- entries...} or {error name | 'RETRY', entries...} (relation_step). A's ops:
-- hsetif, [sadd, hsetnx, when, zadd, notify added | sadd], notify result.
local r = KEYS[1]
local r_id, a_id, a, gate = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local current = redis.call('HGET', r .. ':fa:in', a_id)
if not current then
  return step_refused(r, 'NO_SUCH_APPLICATION')
end
if current ~= ARGV[5] then
  return step_refused(r, 'RETRY')
end
local accept = ARGV[7] == '1'
if accept then
  if redis.call('HEXISTS', r .. ':black', a_id) == 1 then
    return step_refused(r, 'PEER_BLOCKED')
  end
  if ARGV[17] == '1' then
    return step_refused(r, 'BLOCKED_BY_PEER')
  end
end
local keep = ARGV[13]
redis.call('HSET', r .. ':fa:in', a_id, ARGV[6])
redis.call('SREM', r .. ':fa:in:pending', a_id)
local to_a = {a, {'hsetif', ':fa:out', r_id, ARGV[5], ARGV[6], ''}}
local list = {to_a}
local r_added, sent, fields = 0, '0', {}
if accept then
  if redis.call('HSETNX', r .. ':friends', a_id, ARGV[9]) == 1 then
    redis.call('ZADD', r .. ':friends:order', ARGV[8], a_id)
    vlog_record(r .. ':vlog:friends', a_id, 'insert', ARGV[11], ARGV[12])
    r_added = notify(r, ARGV[15], keep)
    table.insert(fields, {'friend:' .. r_id, '1'})
  end
  table.insert(to_a, {'sadd', ':friend_of', r_id})
  if redis.call('SADD', r .. ':friend_of', a_id) == 1 then
    sent = '1'
    table.insert(to_a, {'hsetnx', ':friends', r_id, ARGV[10], ':vlog:friends'})
    table.insert(to_a, {'when', 2})
    table.insert(to_a, {'zadd', ':friends:order', ARGV[8], r_id})
    table.insert(to_a, {'notify', ARGV[16]})
    table.insert(fields, {'friend:' .. a_id, '1'})
  end
end
if #fields > 0 then
  table.insert(list, gate_followup(gate, fields))
end
local r_result = notify(r, ARGV[14], keep)
table.insert(to_a, {'notify', ARGV[14]})
return step_done(r, {r_result, r_added, sent}, list)
