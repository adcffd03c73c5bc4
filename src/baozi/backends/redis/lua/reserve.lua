-- ARGV: P, queue, owner, lease, n. Returns per item: id, payload, priority, deliveries, task, failures.
local q, owner, lease, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if n <= 0 or redis.call('HGET', qkey(q, 'o'), 'paused') == 'true' then return {} end
local now = clock()
promote(q, now, 1000 + n)
local R = qkey(q, 'r')
local got = redis.call('ZRANGE', R, 0, n - 1)
if #got == 0 then return {} end
redis.call('ZREMRANGEBYRANK', R, 0, #got - 1)
local L, due, started = qkey(q, 'l'), now + lease, stamp(now)
local until_ = stamp(due)
local out, leased = {}, {}
for _, m in ipairs(got) do
  local id = id_of(m)
  local h = P .. ':i:' .. id
  local v = redis.call('HMGET', h, 'p', 'pr', 't', 'f', 'd')
  local d = tonumber(v[5] or 0) + 1
  redis.call('HSET', h, 'st', 1, 'o', owner, 'du', until_, 's', started, 'd', d)
  leased[#leased + 1] = 0
  leased[#leased + 1] = lease_member(until_, id)
  out[#out + 1] = id
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
  out[#out + 1] = d
  out[#out + 1] = v[3]
  out[#out + 1] = v[4]
end
zadd_pairs(L, leased)
-- A reservation can unblock only a put into a full queue, so it wakes waiters only in a queue
-- with a recorded maxsize: a worker's own reservations do not wake every listening process.
if redis.call('HEXISTS', qkey(q, 'o'), 'maxsize') == 1 then changed(q) end
return out
