-- ARGV: P, id. A failed or cancelled job goes back to its place and starts over. Returns 1 if so.
local id = ARGV[2]
local h = P .. ':i:' .. id
local v = redis.call('HMGET', h, 'q', 'out', 'm')
if v[2] ~= 'failed' and v[2] ~= 'cancelled' then return 0 end
local q = v[1]
redis.call('HDEL', h, 'out', 'r', 'e', 'fi', 'o', 'du')
redis.call('HSET', h, 'st', 0, 'f', 0, 'd', 0)
redis.call('ZADD', qkey(q, 'r'), 0, v[3])
redis.call('ZREM', P .. ':done', id)
redis.call('HINCRBY', qkey(q, 'c'), v[2], -1)
changed(q)
return 1
