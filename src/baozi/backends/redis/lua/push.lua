-- ARGV: P, then one inbox entry (see the prelude): queue, id, priority key, priority, payload,
-- task, created, retried. Appends the job to the inbox and announces it; returns 1 instead of
-- announcing when workers wait idle on the queue, and the client then runs the hand-off script.
-- It runs without the prelude: a job producer waits for this script once per job, and defining
-- the prelude's functions would cost more than the rest of it.
local P, q = ARGV[1], ARGV[2]
redis.call('RPUSH', P .. ':in', unpack(ARGV, 2, 9))
if redis.call('EXISTS', P .. ':q:' .. q .. ':w') == 1 then return 1 end
redis.call('PUBLISH', P .. ':changed', q)
return 0
