-- Version log of one synced list (see storage/versionlog.py).
-- <base> is a hash {id, ver, floor}; <base>:log is a sorted set entity -> version
-- of its latest change; <base>:ops is a hash entity -> 'insert:<version>' |
-- 'update' | 'delete'. Several changes to one entity collapse into one entry;
-- an insert followed by updates stays 'insert:<version of the insert>', so a
-- reader can tell whether the client saw the insert. The log keeps at most
-- max_len entries; 'floor' is the newest version dropped from it, so a client
-- at a version >= floor can still be answered incrementally.
local function vlog_record(base, entity, op, new_id, max_len)
  if redis.call('HSETNX', base, 'id', new_id) == 1 then
    redis.call('HSET', base, 'ver', 0, 'floor', 0)
  end
  local ver = redis.call('HINCRBY', base, 'ver', 1)
  local ops = base .. ':ops'
  local log = base .. ':log'
  if op == 'insert' then
    op = 'insert:' .. ver
  elseif op == 'update' then
    local previous = redis.call('HGET', ops, entity)
    if previous and string.sub(previous, 1, 7) == 'insert:' then
      op = previous
    end
  end
  redis.call('ZADD', log, ver, entity)
  redis.call('HSET', ops, entity, op)
  local excess = redis.call('ZCARD', log) - tonumber(max_len)
  if excess > 0 then
    local old = redis.call('ZRANGE', log, 0, excess - 1, 'WITHSCORES')
    for i = 1, #old, 2 do
      redis.call('HDEL', ops, old[i])
    end
    redis.call('ZREMRANGEBYRANK', log, 0, excess - 1)
    redis.call('HSET', base, 'floor', old[#old])
  end
  return ver
end
