-- ARGV: P, then one inbox entry (see the prelude): queue, id, priority key, priority, payload,
-- task, created, retried. Appends the job to the inbox, then hands what is ready to the workers
-- that wait idle on the queue, or announces the change when some is left over (or nobody waits).
redis.call('RPUSH', P .. ':in', unpack(ARGV, 2, 9))
local q = ARGV[2]
if not handoff(q, clock()) then changed(q) end
return 0
