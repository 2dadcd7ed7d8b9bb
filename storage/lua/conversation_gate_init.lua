-- Fill the absent fields of a single chat's gate (message_send.lua), from what the
-- caller read of the two users just before: their accounts exist ('exists'),
-- 'black:<user>' and 'friend:<user>' as that user's ':black' and ':friends' entries
-- for the other said ('1' or '0').
-- KEYS[1] conversation base
-- ARGV: field, value, field, value, ...
-- Returns how many fields were absent and are now set.
--
-- Why this is linearizable: the fields of a gate are otherwise written only by
-- follow-ups of the friend and blacklist steps of the pair, each the state that
-- step left (always '1' or '0', never deleted), applied before the step is
-- acknowledged. The caller read the users' entries after the send arrived, so
-- what it read is at least as new as every such step acknowledged before the send.
-- A field already present was written by such a follow-up (or by an earlier fill
-- from reads no older than its own): it is kept (HSETNX), so a step that changed
-- the entry after the read, and whose follow-up landed first, wins; one whose
-- follow-up lands later overwrites the filled value. Either way the gate ends
-- as the newest step left it, and a send sees either that step's state or the
-- one before it, as it would if it had run entirely before or after the step.
-- A gate is only filled when the peer's account exists (accounts are never
-- deleted), which is what 'exists' stands for.
local set = 0
for i = 1, #ARGV, 2 do
  set = set + redis.call('HSETNX', KEYS[1] .. ':gate', ARGV[i], ARGV[i + 1])
end
return set
