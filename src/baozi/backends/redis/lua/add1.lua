-- One job or item to the back of a queue, ready now, with no bound: the common case of push and
-- enqueue, kept to the fewest calls. ARGV: P, retried ('1'; 'k': not retried, the queue is
-- known), queue, id, priority key, priority, payload, task ('' for a plain item), created.
local q, id = ARGV[3], ARGV[4]
if ARGV[2] == '1' and redis.call('EXISTS', P .. ':i:' .. id) == 1 then return 0 end
local seq = redis.call('INCR', P .. ':seq')
local m = ARGV[5] .. '1' .. string.format('%016d', seq) .. ':' .. id
local h = P .. ':i:' .. id
if ARGV[8] == '' then
  redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[6], 'p', ARGV[7], 'st', 0)
else
  redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[6], 'p', ARGV[7], 'st', 0,
             't', ARGV[8], 'n', seq, 'c', ARGV[9])
  redis.call('ZADD', qkey(q, 'j'), seq, id)
end
redis.call('ZADD', qkey(q, 'r'), 0, m)
if ARGV[2] ~= 'k' then redis.call('SADD', P .. ':queues', q) end
changed(q)
return 0
