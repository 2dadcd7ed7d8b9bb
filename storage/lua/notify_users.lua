--! use notify
-- Append the same notification to several users' logs.
-- KEYS: base of each user; ARGV[1] encoded notification, ARGV[2] notifications kept
-- Returns the seq given to each user, in KEYS order.
local seqs = {}
for i = 1, #KEYS do
  seqs[i] = notify(KEYS[i], ARGV[1], ARGV[2])
end
return seqs
