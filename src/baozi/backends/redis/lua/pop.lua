-- ARGV: P, queue, n, back. Removes ready items without a lease; returns them as reserve does.
local q, n, back = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
if n <= 0 then return {} end
promote(q, clock(), 1000 + n)
local ids, vals = ready_head(q, n, back)
if #ids == 0 then return {} end
local out = {}
for i, id in ipairs(ids) do
  local v = vals[i]  -- as READY_FIELDS reads it
  redis.call('DEL', P .. ':i:' .. id)
  if v[6] then unjob(q, id) end
  put_item(out, id, v, v[8])
end
-- The checked items are the head (or the tail) of the set now: the junk among them is gone.
if back then
  owned_call('ZREMRANGEBYRANK', qkey(q, 'r'), -#ids, -1)
else
  owned_call('ZREMRANGEBYRANK', qkey(q, 'r'), 0, #ids - 1)
end
changed(q)
return out
