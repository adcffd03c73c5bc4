-- ARGV: P, id, ttl, running. Cancels a job that has not finished: waiting (queued or scheduled) or
-- running, whose lease ends here, so its worker's settle leaves it alone (with running '0', a
-- live lease is left alone). Returns 1 when cancelled.
local id, ttl = ARGV[2], tonumber(ARGV[3])
local h = P .. ':i:' .. id
local r, why = read_item(id, {'q', 't', 'st', 'du', 'm'})
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
redis.call('HDEL', h, 'o')
redis.call('HSET', h, 'st', -1, 'out', 'cancelled', 'fi', stamp(now))
owned_call('ZADD', P .. ':done', now + ttl, id)
add_count(qkey(q, 'c'), 'cancelled', 1)
count(q, v[2], 'cancelled', 1)
changed(q)
return 1
