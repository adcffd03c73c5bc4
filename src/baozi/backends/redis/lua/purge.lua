-- ARGV: P, limit. Removes up to limit finished jobs whose time to live ran out.
local DONE = P .. ':done'
local ids = owned_call('ZRANGEBYSCORE', DONE, '-inf', clock(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local h = P .. ':i:' .. id
  local v = redis.call('HMGET', h, 'q', 'out')
  if v[1] then
    owned_call('ZREM', qkey(v[1], 'j'), id)
    if v[2] then add_count(qkey(v[1], 'c'), v[2], -1) end
  end
  redis.call('DEL', h)
  owned_call('ZREM', DONE, id)
end
return #ids
