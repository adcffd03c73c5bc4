-- Ready items by index, left in place. ARGV: P, queue, start, stop (as ZRANGE).
-- Returns per item: id, payload, priority, deliveries, task, failures (junk moved aside is left
-- out).
local q = ARGV[2]
promote(q, clock(), 1000)
local out, R = {}, qkey(q, 'r')
for _, m in ipairs(owned_call('ZRANGE', R, ARGV[3], ARGV[4])) do
  local id = id_of(m)
  local v = ready_item(q, R, m)
  if v then put_item(out, id, v, v[8]) end
end
return out
