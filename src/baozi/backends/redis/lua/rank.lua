-- ARGV: P, queue, id. How many ready items are ahead of the item; nil unless it is ready.
local q, id = ARGV[2], ARGV[3]
local r, why = read_item(id, {'q', 'm', 'st'})
if why then
  junk_item(id, why, r.q)
  return nil
end
local v = {r.q, r.m, r.st}
if v[1] ~= q or v[3] == '-1' then return nil end
promote(q, clock(), 1000)
return owned_call('ZRANK', qkey(q, 'r'), v[2])
