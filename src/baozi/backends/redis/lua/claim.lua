-- ARGV: P, queue, owner, lease, n, then n distinct ids, then those of them the owner may take
-- over from another. Leases each named item of the queue that is ready (a lease that ran out
-- and a schedule that came due count) -- or that another owner leases, when it may be taken
-- over -- to owner, as reserve leases the head. Returns per item, in the order of the ids: id,
-- payload, priority, deliveries, task, failures.
local q, owner, lease, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HGET', qkey(q, 'o'), 'paused') == 'true' then return {} end
local takeover = {}
for i = 6 + n, #ARGV do takeover[ARGV[i]] = true end
local now = clock()
local ids, vals = {}, {}
for i = 6, 5 + n do
  local id = ARGV[i]
  local v, why = read_item(id, {'q', 'm', 'st', 'p', 'pr', 't', 'f', 'd', 'o', 'du'})
  local due = not why and (v.st == '1' or v.st == '2') and tonumber(v.du) <= now
  if why then
    -- an id that names nothing is left out; an item that cannot be read is moved aside
    if why ~= 'not an item id' and why ~= 'no item hash' then junk_item(id, why, q) end
  elseif v.q == q and (v.st == '0' or due or (v.st == '1' and v.o ~= owner and takeover[id])) then
    if tonumber(v.f or 0) > tonumber(v.d or 0) then
      junk_item(id, 'more failures (f) than deliveries (d)', q)
    else
      unlist(q, id, v.st, v)
      ids[#ids + 1] = id
      vals[#vals + 1] = {v.q, v.m, v.st, v.p, v.pr, v.t, v.f, v.d}
    end
  end
end
local out = lease_items(q, owner, lease, ids, vals, now)
-- As after a reserve: only a put waiting for room in a bounded queue can need to hear of it.
if #out > 0 and redis.call('HEXISTS', qkey(q, 'o'), 'maxsize') == 1 then changed(q) end
return out
