-- End runs of jobs an owner holds. ARGV: P, queue, owner, ttl, then per job: id, status, result,
-- error, retry_in ('' for none). Returns how many were settled.
local q, owner, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = clock()
local R, L, S, C = qkey(q, 'r'), qkey(q, 'l'), qkey(q, 's'), qkey(q, 'c')
local DONE = P .. ':done'
local done = 0
for b = 5, #ARGV, 5 do
  local id, status, result, err, retry_in = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4])
  local h = P .. ':i:' .. id
  local v = redis.call('HMGET', h, 'o', 'st', 'm', 'q')
  local st = v[2]
  if v[1] == owner and v[4] == q and (st == '0' or st == '1') then
    if st == '0' then redis.call('ZREM', R, v[3]) else redis.call('ZREM', L, id) end
    redis.call('HDEL', h, 'o')
    if err ~= '' then redis.call('HSET', h, 'e', err) else redis.call('HDEL', h, 'e') end
    if status == 'retry' then
      redis.call('HINCRBY', h, 'f', 1)
      if retry_in > 0 then
        redis.call('HSET', h, 'st', 2, 'du', stamp(now + retry_in))
        redis.call('ZADD', S, now + retry_in, id)
      else
        redis.call('HSET', h, 'st', 0)
        redis.call('ZADD', R, 0, v[3])
      end
    else
      if status == 'failed' then redis.call('HINCRBY', h, 'f', 1) end
      redis.call('HSET', h, 'st', -1, 'out', status, 'fi', stamp(now))
      if result ~= '' then redis.call('HSET', h, 'r', result) end
      redis.call('ZADD', DONE, now + ttl, id)
      redis.call('HINCRBY', C, status, 1)
    end
    done = done + 1
  end
end
if done > 0 then changed(q) end
return done
