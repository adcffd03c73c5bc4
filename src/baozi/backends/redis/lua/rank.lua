-- ARGV: P, queue, id. How many ready items are ahead of the item; nil unless it is ready.
local q, id = ARGV[2], ARGV[3]
local v = redis.call('HMGET', P .. ':i:' .. id, 'q', 'm', 'st')
if v[1] ~= q or v[3] == '-1' then return nil end
promote(q, clock(), 1000)
return redis.call('ZRANK', qkey(q, 'r'), v[2])
