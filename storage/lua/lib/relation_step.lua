-- The reply of a friend or blacklist step (storage/relations.py): its status, its
-- own slot's values (notification seqs), then the entries of its outbox still
-- pending (oldest first) and its own last. A refused step returns the pending
-- entries too, so that they are applied before the refusal is answered.
local function step_refused(source, status)
  local out = {status}
  for _, entry in ipairs(followups_pending(source)) do
    table.insert(out, entry)
  end
  return out
end

local function step_done(source, values, list)
  local out = {'OK'}
  for _, value in ipairs(values) do
    table.insert(out, value)
  end
  for _, entry in ipairs(followups_pending(source)) do
    table.insert(out, entry)
  end
  table.insert(out, followups_record(source, list))
  return out
end

-- The follow-up writing one user's fields of a pair's single-chat gate
-- ('{c:si_<low>_<high>}:gate': 'black:<id>' / 'friend:<id>', '1' or '0'; read by
-- the send step). Fields are always written, never deleted: the send step fills
-- a missing field from the users' keys.
local function gate_followup(gate_base, fields)
  local target = {gate_base}
  for _, pair in ipairs(fields) do
    table.insert(target, {'hset', ':gate', pair[1], pair[2], ''})
  end
  return target
end
