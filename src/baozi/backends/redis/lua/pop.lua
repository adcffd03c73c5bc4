-- ARGV: P, queue, n, back. Removes ready items without a lease; returns them as reserve does.
local q, n, back = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
if n <= 0 then return {} end
promote(q, clock(), 1000 + n)
local got = ready_head(q, n, back)
if #got == 0 then return {} end
local out, J, members = {}, qkey(q, 'j'), {}
for _, x in ipairs(got) do
  local id, v = x[1], x[3]
  members[#members + 1] = x[2]
  redis.call('DEL', P .. ':i:' .. id)
  if v.t then redis.call('ZREM', J, id) end
  out[#out + 1] = id
  out[#out + 1] = v.p
  out[#out + 1] = v.pr
  out[#out + 1] = v.d
  out[#out + 1] = v.t
  out[#out + 1] = v.f
end
zrem_all(qkey(q, 'r'), members)
changed(q)
return out
