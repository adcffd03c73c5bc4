-- ARGV: P, queue, n, back. Removes ready items without a lease; returns them as reserve does.
local q, n, back = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
if n <= 0 then return {} end
promote(q, clock(), 1000 + n)
local R = qkey(q, 'r')
local got = redis.call(back and 'ZPOPMAX' or 'ZPOPMIN', R, n)
if #got == 0 then return {} end
local out, J = {}, qkey(q, 'j')
for i = 1, #got, 2 do
  local id = id_of(got[i])
  local h = P .. ':i:' .. id
  local v = redis.call('HMGET', h, 'p', 'pr', 'd', 't', 'f')
  redis.call('DEL', h)
  if v[4] then redis.call('ZREM', J, id) end
  out[#out + 1] = id
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
  out[#out + 1] = v[3]
  out[#out + 1] = v[4]
  out[#out + 1] = v[5]
end
changed(q)
return out
