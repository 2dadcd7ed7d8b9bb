--! use followups
-- Append one notification to several users' logs: the primary step, on the slot of
-- the entity that sends it (docs/CLUSTER.md, "Steps that span entities"). It writes
-- nothing of its own but the outbox entry: a 'notify' follow-up per user, which the
-- caller applies (one followup_apply per user, each on its user's slot) before it
-- goes on. The entry is what makes the appends happen exactly once: a replay after a
-- node died in between appends to the users not reached yet (each target skips an
-- entry it applied).
-- KEYS[1] sender base; ARGV[1] encoded notification, ARGV[2..] base of each user.
-- Returns the sender's pending outbox entries, oldest first, then this step's.
local sender, payload = KEYS[1], ARGV[1]
local list = {}
for i = 2, #ARGV do
  table.insert(list, {ARGV[i], {'notify', payload}})
end
local out = followups_pending(sender)
table.insert(out, followups_record(sender, list))
return out
