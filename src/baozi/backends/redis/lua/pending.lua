-- Publish-pending marks of a queue's jobs: P:q:NAME:p, the job ids scored by their marks' times.
-- ARGV: P, how, queue, then
--   'mark', id, time, ...  -> sets (adds or moves) the mark of each id that names a job of the
--                             queue; how many were set;
--   'clear', id, time, ... -> removes each mark whose time is the one given (whatever its time,
--                             given ''); how many were removed;
--   'due', before, limit   -> the first limit marks whose time is at most before, earliest
--                             first: id, time, id, time ...;
--   'next'                 -> the earliest mark's time; nil when the queue has none.
-- A score comes back as the exact double it was written as, so a time compares equal to itself.
local how, q = ARGV[2], ARGV[3]
local K = qkey(q, 'p')
if how == 'mark' then
  local done = 0
  for i = 4, #ARGV, 2 do
    local id = ARGV[i]
    local v, why = read_item(id, {'q', 't'})
    if why and why ~= 'no item hash' and why ~= 'not an item id' then junk_item(id, why, v.q) end
    if not why and v.q == q and v.t then
      owned_call('ZADD', K, ARGV[i + 1], id)
      done = done + 1
    end
  end
  return done
elseif how == 'clear' then
  local done = 0
  for i = 4, #ARGV, 2 do
    local at = owned_call('ZSCORE', K, ARGV[i])
    if at and (ARGV[i + 1] == '' or tonumber(at) == tonumber(ARGV[i + 1])) then
      done = done + owned_call('ZREM', K, ARGV[i])
    end
  end
  return done
elseif how == 'due' then
  return owned_call('ZRANGEBYSCORE', K, '-inf', ARGV[4], 'WITHSCORES', 'LIMIT', 0, ARGV[5])
end
return owned_call('ZRANGE', K, 0, 0, 'WITHSCORES')[2] or false
