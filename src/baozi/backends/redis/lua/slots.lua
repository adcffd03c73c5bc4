-- Slots: the sorted set P:sl:NAME scores each holder by when its time runs out (server clock).
-- ARGV: P, op, name, then: acquire holder limit ttl | release holder | renew ttl holders... | holders.
-- acquire returns -1 when the holder has a slot, else the seconds until the first holder's time
-- runs out (as text).
local op, name = ARGV[2], ARGV[3]
local Z = P .. ':sl:' .. name
local now = clock()
owned_call('ZREMRANGEBYSCORE', Z, '-inf', now)
if op == 'acquire' then
  local holder, limit, ttl, claim = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
  local kept = claim ~= '' and owned_call('ZREM', Z, 'claim:' .. claim) == 1  -- kept for it
  if kept or owned_call('ZSCORE', Z, holder) or owned_call('ZCARD', Z) < limit then
    owned_call('ZADD', Z, now + ttl, holder)
    local last = owned_call('ZRANGE', Z, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', Z, math.ceil(tonumber(last[2]) * 1000) + 1000)
    return '-1'
  end
  local first = owned_call('ZRANGE', Z, 0, 0, 'WITHSCORES')
  return tostring(math.max(tonumber(first[2]) - now, 0))
elseif op == 'release' then
  local gone = owned_call('ZREM', Z, ARGV[4])
  -- The first job waiting for the slot (in queue order: the set sorts by ready-set member)
  -- that is still scheduled becomes ready now.
  local W = P .. ':wt:' .. name
  local woke = false
  while not woke do
    local first = owned_call('ZRANGE', W, 0, 0)
    if #first == 0 then break end
    owned_call('ZREM', W, first[1])
    local id = id_of(first[1]) or ''
    local h = P .. ':i:' .. id
    local v = redis.call('HMGET', h, 'st', 'q', 'm')
    if v[1] == '2' and v[3] == first[1] then
      owned_call('ZREM', qkey(v[2], 's'), id)
      redis.call('HSET', h, 'st', 0)
      owned_call('ZADD', qkey(v[2], 'r'), 0, v[3])
      woke = true
      if gone > 0 then  -- the freed slot is kept for it: no newer job takes it first
        owned_call('ZADD', Z, now + tonumber(ARGV[5]), 'claim:' .. id)
        redis.call('PEXPIREAT', Z, math.ceil((now + tonumber(ARGV[5])) * 1000) + 1000, 'GT')
      end
    end
  end
  if gone > 0 or woke then redis.call('PUBLISH', P .. ':changed', '') end
  return gone
elseif op == 'renew' then
  local ttl, done = tonumber(ARGV[4]), 0
  for i = 5, #ARGV do
    if owned_call('ZSCORE', Z, ARGV[i]) then
      owned_call('ZADD', Z, now + ttl, ARGV[i])
      done = done + 1
    end
  end
  if done > 0 then
    local last = owned_call('ZRANGE', Z, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', Z, math.ceil(tonumber(last[2]) * 1000) + 1000)
  end
  return done
elseif op == 'holders' then
  return owned_call('ZRANGE', Z, 0, -1)
end
return redis.error_reply('unknown slots op ' .. tostring(op))
