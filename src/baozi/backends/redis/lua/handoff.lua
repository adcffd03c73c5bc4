-- ARGV: P, queue. Sent after a job's push to the inbox: hands what is ready to the workers that
-- wait idle on the queue; announces the change when some is left over (or nobody waits).
local q = ARGV[2]
if not handoff(q, clock()) then changed(q) end
return 0
