-- A queue as a whole. ARGV: P, how, then
--   'totals', queue      -> the job totals as field, value pairs (field: event ':' task);
--   'has', queue         -> 1 when the queue is listed;
--   'list'               -> the names of the queues listed (the inbox filed first, so that a
--                           queue whose jobs all wait there is listed too);
--   'delete', queue      -> 1 when the queue held nothing and is now forgotten: its name,
--                           options and totals (its finished counts are all 0 then);
--   'holders', queue...  -> per owner holding live leases on these queues: owner, how many;
--   'running', queue...  -> per item under a live lease on these queues: its owner, its id.
local how = ARGV[2]
if how == 'totals' then
  local T, out = qkey(ARGV[3], 't'), {}
  local flat = redis.call('HGETALL', T)
  for i = 1, #flat, 2 do
    if string.match(flat[i + 1], '^%-?%d+$') and #flat[i + 1] < 19 then
      out[#out + 1] = flat[i]
      out[#out + 1] = flat[i + 1]
    else
      junk_field(T, flat[i], 'not a count')
    end
  end
  return out
elseif how == 'has' then
  return owned_call('SISMEMBER', P .. ':queues', ARGV[3])
elseif how == 'list' then
  return owned_call('SMEMBERS', P .. ':queues')
elseif how == 'delete' then
  local q = ARGV[3]
  if owned_call('SISMEMBER', P .. ':queues', q) == 0 then return 0 end
  for _, suffix in ipairs({'r', 'l', 's', 'a', 'j'}) do
    if redis.call('EXISTS', qkey(q, suffix)) == 1 then return 0 end
  end
  redis.call('DEL', qkey(q, 'o'), qkey(q, 'c'), qkey(q, 't'), qkey(q, 'p'))
  owned_call('SREM', P .. ':queues', q)
  changed(q)
  return 1
end
local now, held, out = stamp(clock()), {}, {}
for i = 3, #ARGV do
  local L = qkey(ARGV[i], 'l')
  for _, m in ipairs(owned_call('ZRANGEBYLEX', L, '(' .. now .. ';', '+')) do
    local id = id_of(m)  -- nil for junk (no ':'), which names no item
    local owner = id and redis.call('HGET', P .. ':i:' .. id, 'o')
    if owner and owner ~= '' then
      if how == 'running' then
        out[#out + 1] = owner
        out[#out + 1] = id
      else
        held[owner] = (held[owner] or 0) + 1
      end
    end
  end
end
for owner, n in pairs(held) do
  out[#out + 1] = owner
  out[#out + 1] = n
end
return out
