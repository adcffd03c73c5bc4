-- What the client could not read, moved aside as the scripts move junk (see the prelude).
-- ARGV: P, how, then 'item', queue, id, reason | 'field', key (after 'P:'), name, reason |
-- 'member', key (of a set or sorted set, after 'P:'), member, reason.
-- Returns 1 when it moved something (0: it was gone already).
local how = ARGV[2]
if how == 'item' then
  local id = ARGV[4]
  if redis.call('EXISTS', P .. ':i:' .. id) == 0 then return 0 end
  junk_item(id, ARGV[5], ARGV[3])
  return 1
end
local key = P .. ':' .. ARGV[3]
if how == 'member' then
  local kind = redis.call('TYPE', key).ok
  local gone = 0
  if kind == 'set' then gone = owned_call('SREM', key, ARGV[4]) end
  if kind == 'zset' then gone = owned_call('ZREM', key, ARGV[4]) end
  if gone == 0 then return 0 end
  junk_value(key, ARGV[4], ARGV[5])
  return 1
end
if redis.call('HEXISTS', key, ARGV[4]) == 0 then return 0 end
junk_field(key, ARGV[4], ARGV[5])
return 1
