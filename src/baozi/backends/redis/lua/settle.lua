-- End runs of jobs an owner holds. ARGV: P, queue, owner, ttl, failed_ttl ('inf': kept until
-- forgotten), then per job: id, status, result ('=' then the value, or '' for none), error (''
-- for none), retry_in, slot (a deferred job waits for it; '' for none), the slot's limit. The
-- jobs that depend on those finished are released (or ended) here too. Returns how many were
-- settled.
local q, owner, ttl, failed_ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local now = clock()
local R, L, S = qkey(q, 'r'), qkey(q, 'l'), qkey(q, 's')
local finished, tally, ended = stamp(now), {}, {}
local done, gone, left, parents = 0, {}, {}, {}
for b = 6, #ARGV, 7 do
  local id, status, result, err = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if result ~= '' then result = string.sub(result, 2) else result = false end  -- '=' .. value, or none
  local h = P .. ':i:' .. id
  local v, why = read_own(id, owner, q)
  if why then junk_item(id, why, q) end
  v = v or {}
  local st = v[2]
  if not v[1] then  -- not the owner's (or moved aside): nothing to settle
  elseif v[1] == owner and v[4] == q and (st == '0' or st == '1') and not v[7] then
    -- a plain item (no task) taken by a worker: it keeps no record, so finishing removes it
    if st == '0' then owned_call('ZREM', R, v[3]) else left[#left + 1] = lease_member(v[6], id) end
    if status == 'retry' or status == 'deferred' then
      redis.call('HDEL', h, 'o')
      redis.call('HSET', h, 'st', 0)
      owned_call('ZADD', R, 0, v[3])
    else
      redis.call('DEL', h)
    end
    done = done + 1
  elseif v[1] == owner and v[4] == q and (st == '0' or st == '1') then
    if st == '0' then owned_call('ZREM', R, v[3]) else left[#left + 1] = lease_member(v[6], id) end
    -- no owner and no error are '' (one HSET below, not an HDEL too); w keeps the owner of
    -- the run that ended (a deferred job did not run: its w stays)
    local failures = tonumber(v[5] or 0) + ((status == 'succeeded') and 0 or 1)
    if status == 'deferred' then  -- it did not run: back to its place later, the delivery undone
      local retry_in = tonumber(ARGV[b + 4])
      local slot = ARGV[b + 5]
      if slot ~= '' then
        local Z = P .. ':sl:' .. slot
        owned_call('ZREMRANGEBYSCORE', Z, '-inf', now)
        if owned_call('ZCARD', Z) < tonumber(ARGV[b + 6]) then
          retry_in, slot = 0, ''  -- the slot freed meanwhile: ready at once
        end
      end
      local d = tonumber(v[8] or 0)
      if d > 0 then d = d - 1 end
      if retry_in > 0 then
        redis.call('HSET', h, 'st', 2, 'du', stamp(now + retry_in), 'd', d, 'o', '')
        owned_call('ZADD', S, now + retry_in, id)
        if slot ~= '' then
          local W = P .. ':wt:' .. slot
          owned_call('ZADD', W, 0, v[3])
          redis.call('EXPIRE', W, math.ceil(retry_in) + 60)
        end
      else
        redis.call('HSET', h, 'st', 0, 'd', d, 'o', '')
        owned_call('ZADD', R, 0, v[3])
      end
    elseif status == 'retry' then
      local retry_in = tonumber(ARGV[b + 4])
      if retry_in > 0 then
        redis.call('HSET', h, 'st', 2, 'du', stamp(now + retry_in), 'f', failures, 'o', '', 'w', owner, 'e', err)
        owned_call('ZADD', S, now + retry_in, id)
      else
        redis.call('HSET', h, 'st', 0, 'f', failures, 'o', '', 'w', owner, 'e', err)
        owned_call('ZADD', R, 0, v[3])
      end
    else
      if result then
        redis.call('HSET', h, 'st', -1, 'out', status, 'fi', finished, 'f', failures, 'o', '', 'w', owner, 'e', err, 'r', result)
      else
        redis.call('HSET', h, 'st', -1, 'out', status, 'fi', finished, 'f', failures, 'o', '', 'w', owner, 'e', err)
      end
      -- kept ttl (or failed_ttl) seconds, or unique_for (v[9]) when longer; math.huge: for ever
      local keep = math.max(status == 'failed' and failed_ttl or ttl, tonumber(v[9] or 0))
      if keep < math.huge then
        gone[#gone + 1] = now + keep
        gone[#gone + 1] = id
      end
      if v[10] then parents[#parents + 1] = {id, status} end
      tally[status] = (tally[status] or 0) + 1
      ended[status] = ended[status] or {}
      count_one(ended[status], v[7])
    end
    done = done + 1
  end
end
zrem_all(L, left)
zadd_pairs(P .. ':done', gone)
for status, n in pairs(tally) do
  add_count(qkey(q, 'c'), status, n)
  count_all(q, status, ended[status])
end
if #parents > 0 then
  local queues = release(parents, now, ttl, failed_ttl)
  queues[q] = queues[q] or false
  announce(queues, now)
elseif done > 0 then
  changed(q)
end
return done
