-- ARGV: P, queue, n, back. Removes ready items without a lease; returns them as reserve does.
local q, n, back = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
if n <= 0 then return {} end
promote(q, clock(), 1000 + n)
local got = ready_head(q, n, back)
if #got == 0 then return {} end
local out, J = {}, qkey(q, 'j')
for _, x in ipairs(got) do
  local id, v = x[1], x[3]
  redis.call('DEL', P .. ':i:' .. id)
  if v.t then redis.call('ZREM', J, id) end
  out[#out + 1] = id
  out[#out + 1] = v.p
  out[#out + 1] = v.pr
  out[#out + 1] = v.d
  out[#out + 1] = v.t
  out[#out + 1] = v.f
end
-- The checked items are the head (or the tail) of the set now: the junk among them is gone.
if back then
  redis.call('ZREMRANGEBYRANK', qkey(q, 'r'), -#got, -1)
else
  redis.call('ZREMRANGEBYRANK', qkey(q, 'r'), 0, #got - 1)
end
changed(q)
return out
