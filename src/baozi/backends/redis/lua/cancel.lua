-- ARGV: P, id, ttl, running, failed_ttl. Cancels a job that has not finished: waiting (for its
-- dependencies, or queued or scheduled) or running, whose lease ends here, so its worker's
-- settle leaves it alone (with running '0', a live lease is left alone). The jobs that depend
-- on it are released, cancelled or failed (kept failed_ttl seconds) here too. Returns 1 when
-- cancelled.
local id, ttl, failed_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local h = P .. ':i:' .. id
local r, why = read_item(id, {'q', 't', 'st', 'du', 'm', 'uf', 'hc', 'o'})
if why then
  junk_item(id, why, r.q)
  return 0
end
local v = {r.q, r.t, r.st, r.du}
if not v[2] then return 0 end
local q, st = v[1], v[3]
local now = clock()
if st == '-1' or (ARGV[4] == '0' and st == '1' and tonumber(v[4]) > now) then return 0 end
unlist(q, id, st, r)
if st == '1' and tonumber(v[4]) > now and r.o and r.o ~= '' then
  redis.call('HSET', h, 'w', r.o)  -- its run ends here: its owner is the last run's
end
redis.call('HDEL', h, 'o')
end_unrun(id, q, v[2], 'cancelled', nil, now, ttl, r.uf)
local queues = {}
if r.hc then queues = release({{id, 'cancelled'}}, now, ttl, failed_ttl) end
queues[q] = queues[q] or false
announce(queues, now)
return 1
