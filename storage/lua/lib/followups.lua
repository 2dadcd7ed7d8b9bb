-- Follow-ups: the writes a step makes in slots other than its own (docs/CLUSTER.md,
-- "Steps that span entities"). A step builds them as a list of
-- {target base, {op, arg, ...}, {op, arg, ...}, ...} (ops and their arguments:
-- storage/lua/followup_apply.lua), and followups_record keeps them in the step's
-- own slot, atomically with the step: '<source>:outbox' maps a revision (from
-- '<source>:outbox:rev') to the entry, encoded as netstrings
-- ('<len>:<bytes>'): revision, then per target: base, count of tokens, tokens.
-- The caller applies the entry, then deletes it; an entry left behind (its node
-- died in between) is applied again by whoever replays the source.
local function fu_netstring(value)
  value = tostring(value)
  return #value .. ':' .. value
end

local function followups_record(source, list)
  if #list == 0 then
    return ''
  end
  local rev = redis.call('INCR', source .. ':outbox:rev')
  local parts = {fu_netstring(rev)}
  for _, target in ipairs(list) do
    local tokens = {}
    for i = 2, #target do
      for _, token in ipairs(target[i]) do
        table.insert(tokens, fu_netstring(token))
      end
    end
    table.insert(parts, fu_netstring(target[1]))
    table.insert(parts, fu_netstring(#tokens))
    table.insert(parts, fu_netstring(table.concat(tokens)))
  end
  local entry = table.concat(parts)
  redis.call('HSET', source .. ':outbox', rev, entry)
  return entry
end

-- Entries of the source still waiting to be applied (left by a node that died),
-- oldest first, so that the caller applies them before the step's own.
local function followups_pending(source)
  if redis.call('EXISTS', source .. ':outbox') == 0 then
    return {}
  end
  local flat = redis.call('HGETALL', source .. ':outbox')
  local entries = {}
  for i = 1, #flat, 2 do
    table.insert(entries, {tonumber(flat[i]), flat[i + 1]})
  end
  table.sort(entries, function(x, y) return x[1] < y[1] end)
  local out = {}
  for _, pair in ipairs(entries) do
    table.insert(out, pair[2])
  end
  return out
end
