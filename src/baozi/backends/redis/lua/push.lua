-- ARGV: P, then one inbox entry (see the prelude): queue, id, priority key, priority, payload,
-- task, created, retried. Appends the job to the inbox and announces it; when workers wait idle
-- on the queue, hands it (and whatever else is ready) to them instead.
-- A job producer waits for this script once per job, so the common case -- nobody waits idle --
-- ends before the prelude's definitions, which are placed at the marker below and cost more to
-- define than the rest of the script.
local P, q = ARGV[1], ARGV[2]
redis.call('RPUSH', P .. ':in', unpack(ARGV, 2, 9))
if redis.call('EXISTS', P .. ':q:' .. q .. ':w') == 0 then
  redis.call('PUBLISH', P .. ':changed', q)
  return 0
end
-- @prelude
if not handoff(q, clock()) then changed(q) end
return 0
