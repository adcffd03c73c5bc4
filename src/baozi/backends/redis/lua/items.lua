-- Ready items by index, left in place. ARGV: P, queue, start, stop (as ZRANGE).
-- Returns per item: id, payload, priority, deliveries, task, failures.
local q = ARGV[2]
promote(q, clock(), 1000)
local out = {}
for _, m in ipairs(redis.call('ZRANGE', qkey(q, 'r'), ARGV[3], ARGV[4])) do
  local id = id_of(m)
  local v = redis.call('HMGET', P .. ':i:' .. id, 'p', 'pr', 'd', 't', 'f')
  out[#out + 1] = id
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
  out[#out + 1] = v[3]
  out[#out + 1] = v[4]
  out[#out + 1] = v[5]
end
return out
