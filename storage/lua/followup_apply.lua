--! use versionlog notify
-- Apply one step's follow-ups to one target (storage/lua/lib/followups.lua).
-- KEYS[1] target base
-- ARGV[1] source base, ARGV[2] the entry's revision, ARGV[3] new version id (for a
-- version log created here), ARGV[4] version log length, ARGV[5] notifications kept,
-- ARGV[6..] ops, each a name and its arguments (key suffixes are appended to the
-- target base; a version log suffix '' means the list has none):
--   hsetnx  suffix field value vlog   set if absent (a version-log insert)
--   hset    suffix field value vlog   set (insert if absent, else update)
--   hsetxx  suffix field value vlog   set only if present (an update)
--   hsetif  suffix field expected value vlog   set only if it holds expected (a
--                                     compare-and-set; an update)
--   hdel    suffix field vlog         delete (a version-log delete)
--   hmax    suffix field value        raise a number, never lower it
--   sadd / srem  suffix member
--   zadd    suffix score member
--   zrem    suffix member
--   notify  payload                   append a notification (returns its seq)
--   when    n                         apply the next n ops only if the op before
--                                     changed something (result not 0); else they
--                                     are skipped and their results are 0
-- The target keeps the newest revision it applied per source ('<target>:applied');
-- an entry not newer is skipped, so applying one twice, or an older one after a
-- newer one, changes nothing. Returns {'OK', result per op} or {'SKIPPED'}.
local target, source, rev = KEYS[1], ARGV[1], tonumber(ARGV[2])
local arity = {hsetnx = 5, hset = 5, hsetxx = 5, hsetif = 6, hdel = 4, hmax = 4, sadd = 3,
  srem = 3, zadd = 4, zrem = 3, notify = 2, when = 2}
local check = 6
while check <= #ARGV do
  local width = arity[ARGV[check]]
  if not width or check + width - 1 > #ARGV then
    return redis.error_reply('ERR malformed follow-up at argument ' .. check)
  end
  check = check + width
end
local applied = tonumber(redis.call('HGET', target .. ':applied', source) or '0')
if rev <= applied then
  return {'SKIPPED'}
end
redis.call('HSET', target .. ':applied', source, rev)
local new_id, log_len, keep = ARGV[3], ARGV[4], ARGV[5]
local results = {'OK'}
local i = 6
local previous, skip = 1, 0
while i <= #ARGV do
  local op = ARGV[i]
  local result = 0
  if skip > 0 then
    skip = skip - 1
    i = i + arity[op]
  elseif op == 'when' then
    if previous == 0 then
      skip = tonumber(ARGV[i + 1])
    else
      result = 1
    end
    i = i + 2
  elseif op == 'hsetif' then
    local key, field, expected, value, vlog =
      target .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    if redis.call('HGET', key, field) == expected then
      if expected ~= value then
        redis.call('HSET', key, field, value)
        if vlog ~= '' then
          vlog_record(target .. vlog, field, 'update', new_id, log_len)
        end
      end
      result = 1
    end
    i = i + 6
  elseif op == 'hsetnx' or op == 'hset' or op == 'hsetxx' then
    local key, field, value, vlog = target .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local present = redis.call('HEXISTS', key, field) == 1
    if (op == 'hsetnx' and present) or (op == 'hsetxx' and not present) then
      result = 0
    else
      if redis.call('HGET', key, field) ~= value then
        redis.call('HSET', key, field, value)
        if vlog ~= '' then
          vlog_record(target .. vlog, field, present and 'update' or 'insert', new_id, log_len)
        end
      end
      result = 1
    end
    i = i + 5
  elseif op == 'hdel' then
    local key, field, vlog = target .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    result = redis.call('HDEL', key, field)
    if result == 1 and vlog ~= '' then
      vlog_record(target .. vlog, field, 'delete', new_id, log_len)
    end
    i = i + 4
  elseif op == 'hmax' then
    local key, field, value = target .. ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    if value > tonumber(redis.call('HGET', key, field) or '0') then
      redis.call('HSET', key, field, value)
      result = 1
    end
    i = i + 4
  elseif op == 'sadd' or op == 'srem' then
    result = redis.call(op, target .. ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'zadd' then
    result = redis.call('ZADD', target .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'zrem' then
    result = redis.call('ZREM', target .. ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'notify' then
    result = notify(target, ARGV[i + 1], keep)
    i = i + 2
  end
  table.insert(results, result)
  previous = result
end
return results
