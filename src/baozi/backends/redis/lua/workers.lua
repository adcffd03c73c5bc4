-- Worker heartbeats. ARGV: P, how ('beat', id, info, ttl | 'list' | 'forget', id | 'junk', id,
-- reason).
-- 'list' returns id, info, last seen for each live worker.
local how, W, SEEN, EXP = ARGV[2], P .. ':w', P .. ':w:seen', P .. ':w:exp'
local now = clock()
if how == 'beat' then
  redis.call('HSET', W, ARGV[3], ARGV[4])
  redis.call('HSET', SEEN, ARGV[3], stamp(now))
  owned_call('ZADD', EXP, now + tonumber(ARGV[5]), ARGV[3])
  for _, gone in ipairs(owned_call('ZRANGEBYSCORE', EXP, '-inf', now)) do
    redis.call('HDEL', W, gone)
    redis.call('HDEL', SEEN, gone)
    owned_call('ZREM', EXP, gone)
  end
  return 0
elseif how == 'forget' then
  redis.call('HDEL', W, ARGV[3])
  redis.call('HDEL', SEEN, ARGV[3])
  owned_call('ZREM', EXP, ARGV[3])
  return 0
end
-- A heartbeat that cannot be read: its info and last-seen time are moved aside, named by id.
local function junk_worker(id, reason)
  local info, seen = redis.call('HGET', W, id), redis.call('HGET', SEEN, id)
  redis.call('HDEL', W, id)
  redis.call('HDEL', SEEN, id)
  owned_call('ZREM', EXP, id)
  junk_values(W, {id, tostring(info), tostring(seen)}, 'heartbeat of ' .. show(id) .. ': ' .. reason)
end
if how == 'junk' then  -- ARGV: id, reason (what the client could not read)
  if owned_call('ZSCORE', EXP, ARGV[3]) then junk_worker(ARGV[3], ARGV[4]) end
  return 0
end
local out = {}
for _, id in ipairs(owned_call('ZRANGEBYSCORE', EXP, '(' .. stamp(now), '+inf')) do
  local info, seen = redis.call('HGET', W, id), redis.call('HGET', SEEN, id)
  if info and is_stamp(seen) then
    out[#out + 1] = id
    out[#out + 1] = info
    out[#out + 1] = seen
  else
    junk_worker(id, 'no info or last-seen time')
  end
end
return out
