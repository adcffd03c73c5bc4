-- Worker heartbeats. ARGV: P, how ('beat', id, info, ttl | 'list' | 'forget', id).
-- 'list' returns id, info, last seen for each live worker.
local how, W, SEEN, EXP = ARGV[2], P .. ':w', P .. ':w:seen', P .. ':w:exp'
local now = clock()
if how == 'beat' then
  redis.call('HSET', W, ARGV[3], ARGV[4])
  redis.call('HSET', SEEN, ARGV[3], stamp(now))
  redis.call('ZADD', EXP, now + tonumber(ARGV[5]), ARGV[3])
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', EXP, '-inf', now)) do
    redis.call('HDEL', W, gone)
    redis.call('HDEL', SEEN, gone)
    redis.call('ZREM', EXP, gone)
  end
  return 0
elseif how == 'forget' then
  redis.call('HDEL', W, ARGV[3])
  redis.call('HDEL', SEEN, ARGV[3])
  redis.call('ZREM', EXP, ARGV[3])
  return 0
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', EXP, '(' .. stamp(now), '+inf')) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', W, id)
  out[#out + 1] = redis.call('HGET', SEEN, id)
end
return out
