-- Keys and values of one namespace, in the hash P:kv:NS. ARGV: P, op, ns, key, then per op:
-- set value | setdefault value | delete | cas has-expected expected has-value value
-- | incr kind amount (kind 'i' for an integer, 'f' for a float) | clear.
local op, ns, key = ARGV[2], ARGV[3], ARGV[4]
local H = P .. ':kv:' .. ns
if op == 'set' then
  redis.call('HSET', H, key, ARGV[5])
  redis.call('PUBLISH', P .. ':changed', '')
  return 1
elseif op == 'setdefault' then
  redis.call('HSETNX', H, key, ARGV[5])
  return redis.call('HGET', H, key)
elseif op == 'delete' then
  local old = redis.call('HGET', H, key)
  if old then
    redis.call('HDEL', H, key)
    redis.call('PUBLISH', P .. ':changed', '')
  end
  return old
elseif op == 'cas' then
  local old = redis.call('HGET', H, key)
  if ARGV[5] == '1' then
    if old ~= ARGV[6] then return 0 end
  elseif old then
    return 0
  end
  if ARGV[7] == '1' then redis.call('HSET', H, key, ARGV[8]) else redis.call('HDEL', H, key) end
  redis.call('PUBLISH', P .. ':changed', '')
  return 1
elseif op == 'incr' then
  local old = redis.call('HGET', H, key)
  if ARGV[5] == 'i' and (not old or string.match(old, '^%-?%d+$')) then
    -- exact 64-bit integer arithmetic; Redis refuses an overflow
    redis.call('HINCRBY', H, key, ARGV[6])
    return {'i', redis.call('HGET', H, key)}  -- as text: a Lua number is a double
  end
  local x = 0
  if old then x = tonumber(old) end
  if x == nil or (old and string.match(old, '^%s')) then return {'e', old} end
  local sum = x + tonumber(ARGV[6])
  if sum ~= sum or sum == math.huge or sum == -math.huge then return {'o', tostring(sum)} end
  local text = string.format('%.17g', sum)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end  -- a float stays a float
  redis.call('HSET', H, key, text)
  return {'f', text}
elseif op == 'clear' then
  local n = redis.call('HLEN', H)
  if n > 0 then
    redis.call('DEL', H)
    redis.call('PUBLISH', P .. ':changed', '')
  end
  return n
end
return redis.error_reply('unknown kv op ' .. tostring(op))
