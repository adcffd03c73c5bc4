-- ARGV: P, queue. Returns ready, leased, scheduled, waiting, then the finished counts as field,
-- value pairs.
local q = ARGV[2]
promote(q, clock(), 1000)
local out = {owned_call('ZCARD', qkey(q, 'r')), owned_call('ZCARD', qkey(q, 'l')), owned_call('ZCARD', qkey(q, 's')),
             owned_call('ZCARD', qkey(q, 'a'))}
local C = qkey(q, 'c')
local finished = redis.call('HGETALL', C)
for i = 1, #finished, 2 do
  if string.match(finished[i + 1], '^%-?%d+$') and #finished[i + 1] < 19 then
    out[#out + 1] = finished[i]
    out[#out + 1] = finished[i + 1]
  else
    junk_field(C, finished[i], 'not a count')
  end
end
return out
