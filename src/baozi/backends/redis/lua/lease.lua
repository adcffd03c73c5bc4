-- ack, release and extend of items an owner holds. ARGV: P, queue, owner, how, seconds, ids...
-- An item whose lease ran out but that nobody reserved since is still its owner's.
local q, owner, how, seconds = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = clock()
local R, L, S = qkey(q, 'r'), qkey(q, 'l'), qkey(q, 's')
local done = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  local h = P .. ':i:' .. id
  local v, why = read_own(id, owner, q)  -- o, st, m, q, f, du, t, d
  if why then junk_item(id, why, q) end
  v = v or {}
  local st = v[2]
  if v[1] == owner and v[4] == q and (st == '0' or st == '1') then
    if how == 'ack' then
      if st == '0' then owned_call('ZREM', R, v[3]) else owned_call('ZREM', L, lease_member(v[6], id)) end
      redis.call('DEL', h)
      if v[7] then unjob(q, id) end
      done = done + 1
    elseif how == 'extend' then
      if st == '0' then owned_call('ZREM', R, v[3]) else owned_call('ZREM', L, lease_member(v[6], id)) end
      local du = stamp(now + seconds)
      redis.call('HSET', h, 'st', 1, 'du', du)
      owned_call('ZADD', L, 0, lease_member(du, id))
      done = done + 1
    elseif st == '1' then  -- release (one whose lease ran out is back in line already)
      owned_call('ZREM', L, lease_member(v[6], id))
      redis.call('HDEL', h, 'o')
      -- 'return': a job handed to a worker that gave it back unstarted; no delivery counts.
      if how == 'return' then redis.call('HINCRBY', h, 'd', -1) end
      if seconds > 0 then
        redis.call('HSET', h, 'st', 2, 'du', stamp(now + seconds))
        owned_call('ZADD', S, now + seconds, id)
      else
        redis.call('HSET', h, 'st', 0)
        owned_call('ZADD', R, 0, v[3])
      end
      done = done + 1
    end
  end
end
if done > 0 and how ~= 'extend' then changed(q) end  -- a renewal makes nothing ready sooner
return done
