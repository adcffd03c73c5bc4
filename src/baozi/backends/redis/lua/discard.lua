-- ARGV: P, queue, ids... Removes the items a live lease does not hold; returns how many.
local q = ARGV[2]
promote(q, clock(), 1000 + #ARGV)
local done = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local h = P .. ':i:' .. id
  local r, why = read_item(id, {'q', 'st', 't', 'm', 'du'})
  if why then junk_item(id, why, q) end
  local v = {r.q, r.st, r.t}
  if not why and v[1] == q and (v[2] == '0' or v[2] == '2') then
    unlist(q, id, v[2], r)
    redis.call('DEL', h)
    if v[3] then unjob(q, id) end
    done = done + 1
  end
end
if done > 0 then changed(q) end
return done
