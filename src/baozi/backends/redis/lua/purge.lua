-- ARGV: P, limit. Removes up to limit finished jobs whose time to live ran out.
local DONE = P .. ':done'
local ids = owned_call('ZRANGEBYSCORE', DONE, '-inf', clock(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local v = redis.pcall('HMGET', P .. ':i:' .. id, 'q', 'out', 'u', 'pa')
  if v.err then v = {} end
  drop_record(id, {q = v[1], out = v[2], u = v[3], pa = v[4]})
end
return #ids
