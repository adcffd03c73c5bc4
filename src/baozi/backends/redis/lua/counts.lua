-- ARGV: P, queue. Returns ready, leased, scheduled, then the finished counts as field, value pairs.
local q = ARGV[2]
promote(q, clock(), 1000)
local out = {redis.call('ZCARD', qkey(q, 'r')), redis.call('ZCARD', qkey(q, 'l')), redis.call('ZCARD', qkey(q, 's'))}
for _, x in ipairs(redis.call('HGETALL', qkey(q, 'c'))) do out[#out + 1] = x end
return out
