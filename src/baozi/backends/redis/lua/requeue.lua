-- ARGV: P, id. A failed or cancelled job goes back to its place and starts over (what it
-- depended on is not waited for again). Returns 1 if so.
local id = ARGV[2]
local h = P .. ':i:' .. id
local r, why = read_item(id, {'q', 'out', 'm', 'st', 'u'})
if why then
  junk_item(id, why, r.q)
  return 0
end
local v = {r.q, r.out, r.m}
if v[2] ~= 'failed' and v[2] ~= 'cancelled' then return 0 end
local q = v[1]
redis.call('HDEL', h, 'out', 'r', 'e', 'fi', 'o', 'du', 'w')
redis.call('HSET', h, 'st', 0, 'f', 0, 'd', 0)
owned_call('ZADD', qkey(q, 'r'), 0, v[3])
owned_call('ZREM', P .. ':done', id)
if r.u then owned_call('SADD', ukey(r.u), id) end  -- it may hold its key again
add_count(qkey(q, 'c'), v[2], -1)
changed(q)
return 1
