-- ARGV: P, queue, owner, lease, n, channel, received. Returns per item: id, payload, priority,
-- deliveries, task, failures. With a channel, an owner left with free slots waits idle on the
-- queue, and new items are handed to it there (see handoff in the prelude); received is how many
-- handed jobs it has taken in, so the ones still on their way count against n.
local q, owner, lease, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local channel, received = ARGV[6] or '', tonumber(ARGV[7] or 0)
if channel ~= '' then n = n - in_flight(owner, received) end
if n <= 0 or redis.call('HGET', qkey(q, 'o'), 'paused') == 'true' then
  enter_idle(q, owner, 0, lease, '', 0)
  return {}
end
local now = clock()
promote(q, now, 1000 + n)
local out = lease_head(q, owner, lease, n, now)
enter_idle(q, owner, n - #out / 6, lease, channel, now)
if #out == 0 then return {} end
-- A reservation can unblock only a put into a full queue, so it wakes waiters only in a queue
-- with a recorded maxsize: a worker's own reservations do not wake every listening process.
if redis.call('HEXISTS', qkey(q, 'o'), 'maxsize') == 1 then changed(q) end
return out
