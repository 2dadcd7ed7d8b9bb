-- Read what a client at (id, version) needs, in one consistent step.
-- KEYS[1] version log base, KEYS[2] hash of the list's records
-- ARGV[1] client version id, ARGV[2] client version
-- Returns {'EQUAL', id, ver}
--      or {'INCREMENTAL', id, ver, entity, op, record, entity, op, record, ...}
--      or {'FULL', id, ver, entity, record, entity, record, ...}
local meta = redis.call('HMGET', KEYS[1], 'id', 'ver', 'floor')
local id, ver, floor = meta[1] or '', tonumber(meta[2] or '0'), tonumber(meta[3] or '0')
local client_ver = tonumber(ARGV[2])
-- An empty copy at version 0 is the state every log starts from.
local same = ARGV[1] == id or (ARGV[1] == '' and client_ver == 0)
if same and client_ver == ver then
  return {'EQUAL', id, ver}
end
if same and client_ver < ver and client_ver >= floor then
  local changed = redis.call('ZRANGEBYSCORE', KEYS[1] .. ':log', '(' .. client_ver, '+inf')
  local out = {'INCREMENTAL', id, ver}
  for _, entity in ipairs(changed) do
    local op = redis.call('HGET', KEYS[1] .. ':ops', entity)
    local record = false
    if op ~= 'delete' then
      record = redis.call('HGET', KEYS[2], entity) or false
    end
    table.insert(out, entity)
    table.insert(out, op)
    table.insert(out, record or '')
  end
  return out
end
local out = {'FULL', id, ver}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all do
  table.insert(out, all[i])
end
return out
