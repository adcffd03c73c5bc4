-- ARGV: P, id, ttl. Cancels a job that is waiting (queued, an expired lease included, or
-- scheduled). Returns 1 when cancelled.
local id, ttl = ARGV[2], tonumber(ARGV[3])
local h = P .. ':i:' .. id
local v = redis.call('HMGET', h, 'q', 't', 'st', 'du')
if not v[2] then return 0 end
local q, st = v[1], v[3]
local now = clock()
if st == '-1' or (st == '1' and tonumber(v[4]) > now) then return 0 end
unlist(q, id, st, h)
redis.call('HDEL', h, 'o')
redis.call('HSET', h, 'st', -1, 'out', 'cancelled', 'fi', stamp(now))
redis.call('ZADD', P .. ':done', now + ttl, id)
redis.call('HINCRBY', qkey(q, 'c'), 'cancelled', 1)
count(q, v[2], 'cancelled', 1)
changed(q)
return 1
