-- Shared by every script, after _prelude.lua (prepended when the scripts load).
-- Workflows: unique keys and dependencies (see NewJob in backends/contract/records.py).

-- The set of the jobs that may hold unique key u (by its digest: a key is any text).
local function ukey(u)
  return P .. ':uq:' .. redis.sha1hex(u)
end

-- Keep finished job id's record ttl seconds from now, or unique_for (uf) when longer; one kept
-- for ever (math.huge) stays out of P:done, so only forget removes it.
local function keep_record(id, now, ttl, uf)
  local keep = ttl
  if uf then keep = math.max(keep, tonumber(uf)) end
  if keep < math.huge then owned_call('ZADD', P .. ':done', now + keep, id) end
end

-- Whether a job holds its unique key (unique_holds in records.py); v as read_item reads
-- st, out, du, fi, uw, uf.
local function holds(v, now)
  if v.out then return v.fi and tonumber(v.fi) + tonumber(v.uf or 0) > now end
  if status_of(v.st, v.out, v.du, now) == 'running' then return v.uw ~= 'queued' end
  return v.uw ~= 'running'
end

-- The job that holds unique key u, or nil; members that can never hold it again (gone, another
-- key, finished with their unique_for over) leave the set. (A requeued job joins it again.)
local UNIQUE_FIELDS = {'q', 't', 'st', 'out', 'du', 'fi', 'u', 'uw', 'uf'}
local function holder(u, now)
  local U = ukey(u)
  local found, stale = nil, {}
  for _, id in ipairs(owned_call('SMEMBERS', U)) do
    local v, why = read_item(id, UNIQUE_FIELDS)
    if why and why ~= 'no item hash' and why ~= 'not an item id' then junk_item(id, why, v.q) end
    if why or v.u ~= u or not v.t then
      stale[#stale + 1] = id
    elseif holds(v, now) then
      found = found or id
    elseif v.out then
      stale[#stale + 1] = id
    end
  end
  for i = 1, #stale, 4000 do
    owned_call('SREM', U, unpack(stale, i, math.min(i + 3999, #stale)))
  end
  return found
end

-- The error a job failed by its dependency keeps: dependency_error() in records.py, as JSON.
local function dependency_error(parent, status)
  return '{"type": "DependencyFailed", "message": "job ' .. parent
    .. ', which this job depends on, ' .. status .. '", "traceback": ""}'
end

-- End job id of q, task t, as status ('cancelled', or 'failed' with err) without a run, its record
-- kept ttl seconds (or its unique_for, uf), counted as any end is.
local function end_unrun(id, q, t, status, err, now, ttl, uf)
  if err then
    redis.call('HSET', P .. ':i:' .. id, 'st', -1, 'out', status, 'fi', stamp(now), 'e', err)
  else
    redis.call('HSET', P .. ':i:' .. id, 'st', -1, 'out', status, 'fi', stamp(now))
  end
  keep_record(id, now, ttl, uf)
  add_count(qkey(q, 'c'), status, 1)
  if t then count(q, t, status, 1) end
end

-- Make waiting job id (v: q, m, du) ready, or scheduled while its delay runs. Returns whether it
-- is ready.
local function wake_waiting(id, v, now)
  owned_call('ZREM', qkey(v.q, 'a'), id)
  redis.call('DEL', P .. ':pw:' .. id)
  if v.du and tonumber(v.du) > now then
    redis.call('HSET', P .. ':i:' .. id, 'st', 2)
    owned_call('ZADD', qkey(v.q, 's'), tonumber(v.du), id)
    return false
  end
  redis.call('HDEL', P .. ':i:' .. id, 'du')
  redis.call('HSET', P .. ':i:' .. id, 'st', 0)
  owned_call('ZADD', qkey(v.q, 'r'), 0, v.m)
  return true
end

-- The jobs that waited on the ended jobs of ends ({id, status} each): released, cancelled or
-- failed by their on_dependency_failure, and theirs in turn. ttl, failed_ttl: how long those
-- ended keep their record. Returns the queues changed, each mapped to whether a job there is
-- ready now.
local CHILD_FIELDS = {'q', 't', 'st', 'm', 'du', 'od', 'uf'}
local function release(ends, now, ttl, failed_ttl)
  local queues, i = {}, 1
  while i <= #ends do
    local parent, how = ends[i][1], ends[i][2]
    i = i + 1
    for _, c in ipairs(owned_call('ZRANGE', P .. ':ch:' .. parent, 0, -1)) do
      local v, why = read_item(c, CHILD_FIELDS)
      if why and why ~= 'no item hash' and why ~= 'not an item id' then junk_item(c, why, v.q) end
      if not why and v.st == '3' then
        local policy = v.od or 'cancel'
        queues[v.q] = queues[v.q] or false
        if how == 'succeeded' or policy == 'run' then
          local PW = P .. ':pw:' .. c
          owned_call('SREM', PW, parent)
          if owned_call('SCARD', PW) == 0 and wake_waiting(c, v, now) then queues[v.q] = true end
        else
          owned_call('ZREM', qkey(v.q, 'a'), c)
          redis.call('DEL', P .. ':pw:' .. c)
          if policy == 'fail' then
            end_unrun(c, v.q, v.t, 'failed', dependency_error(parent, how), now, failed_ttl, v.uf)
            ends[#ends + 1] = {c, 'failed'}
          else
            end_unrun(c, v.q, v.t, 'cancelled', nil, now, ttl, v.uf)
            ends[#ends + 1] = {c, 'cancelled'}
          end
        end
      end
    end
  end
  return queues
end

-- Tell of the queues release changed: what is ready goes to idle workers, or is announced.
local function announce(queues, now)
  for q, ready in pairs(queues) do
    if not (ready and handoff(q, now)) then changed(q) end
  end
end

-- Remove finished job id's record and its links: v as read_item reads q, out, u, pa. The jobs
-- that depend on it keep it among their parents.
local function drop_record(id, v)
  redis.call('DEL', P .. ':i:' .. id, P .. ':ch:' .. id)
  owned_call('ZREM', P .. ':done', id)
  if v.q then
    unjob(v.q, id)
    if v.out then add_count(qkey(v.q, 'c'), v.out, -1) end
  end
  if v.u then owned_call('SREM', ukey(v.u), id) end
  for parent in string.gmatch(v.pa or '', '[%w_%-]+') do
    owned_call('ZREM', P .. ':ch:' .. parent, id)
  end
end

-- Enqueueing jobs with unique keys or dependencies (see add): the jobs of the call that have
-- them, by index from 0, as ARGV gives them from b on.
local function read_flows(b)
  local flows, k = {}, tonumber(ARGV[b])
  b = b + 1
  for _ = 1, k do
    local f = {uw = ARGV[b + 2], uf = ARGV[b + 3], od = ARGV[b + 4], pa = {}}
    if ARGV[b + 1] ~= '' then f.u = string.sub(ARGV[b + 1], 2) end
    local np = tonumber(ARGV[b + 5])
    for j = 1, np do f.pa[j] = ARGV[b + 5 + j] end
    flows[tonumber(ARGV[b])] = f
    b = b + 6 + np
  end
  return flows
end

-- Whether any of the n items of this add call is there already (a retried call that ran).
local function filed(n)
  for i = 0, n - 1 do
    if redis.call('EXISTS', P .. ':i:' .. ARGV[9 + i * 5]) == 1 then return true end
  end
  return false
end

-- The reply of an add call that ran already: the jobs it did not make, with who holds their key.
local function flows_filed(flows, n, now)
  local out = {'dup'}
  for i = 0, n - 1 do
    local f = flows[i]
    if f and f.u and redis.call('EXISTS', P .. ':i:' .. ARGV[9 + i * 5]) == 0 then
      local h = holder(f.u, now)
      if h then
        out[#out + 1] = i
        out[#out + 1] = h
      end
    end
  end
  return #out > 1 and out or 0
end

-- What becomes of each job of flows, read before anything is written: plan[i] is 'go' (ready
-- or scheduled as any job), 'wait' (plan.pending[i]: the jobs it waits for), 'dup', or, for a
-- job that ends at once, {status, parent, parent's outcome}; plan.off counts the jobs that will
-- not be in the queue, plan.reply is add's reply. Returns nil and the id when a job depends on
-- an id that is no job.
local function plan_flows(flows, n, now)
  local plan, outcome, inkey = {pending = {}, off = 0}, {}, {}
  local reply = {'dup'}
  for i = 0, n - 1 do
    local f = flows[i]
    if f then
      local how, pending = 'go', {}
      for _, parent in ipairs(f.pa) do
        local out = outcome[parent]
        if out == nil then
          local v, why = read_item(parent, {'q', 't', 'st', 'out'})
          if why and why ~= 'no item hash' and why ~= 'not an item id' then
            junk_item(parent, why, v.q)
          end
          if why or not v.t then return nil, parent end
          out = v.out or false
          outcome[parent] = out
        end
        if not out then
          pending[#pending + 1] = parent
          if how == 'go' then how = 'wait' end
        elseif out ~= 'succeeded' and f.od ~= 'run' and type(how) ~= 'table' then
          how = {f.od == 'fail' and 'failed' or 'cancelled', parent, out}
        end
      end
      plan[i] = how
      plan.pending[i] = pending
      if type(how) == 'table' then plan.off = plan.off + 1 end
    end
  end
  for i = 0, n - 1 do
    local f = flows[i]
    if f and f.u then
      local h = inkey[f.u]
      if h == nil then h = holder(f.u, now) or false end
      if h then
        if type(plan[i]) == 'table' then plan.off = plan.off - 1 end
        plan[i] = 'dup'
        plan.off = plan.off + 1
        reply[#reply + 1] = i
        reply[#reply + 1] = h
      else
        -- made: from now on it holds its key as holds() says of a job just made (or ended)
        local holding = f.uw ~= 'running'
        if type(plan[i]) == 'table' then holding = tonumber(f.uf) > 0 end
        inkey[f.u] = holding and ARGV[9 + i * 5] or false
      end
    end
  end
  if #reply > 1 then plan.reply = reply end
  return plan
end

-- Write job id of the plan (its item i): its hash, its unique key, its place among its parents'
-- dependents, and its state when that is not the one every job of the call gets.
local function file_flow(q, id, m, seq, pr, p, task, f, plan, i, delay, now)
  local how = plan[i]
  local st = 0
  if how == 'wait' then st = 3 elseif delay > 0 then st = 2 end
  local fields = {'q', q, 'm', m, 'pr', pr, 'p', p, 'st', st, 't', task, 'n', seq, 'c', stamp(now)}
  local function put(name, value)
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  if delay > 0 then put('du', stamp(now + delay)) end
  if f.u then
    put('u', f.u)
    put('uw', f.uw)
    put('uf', f.uf)
    owned_call('SADD', ukey(f.u), id)
  end
  if #f.pa > 0 then
    put('pa', table.concat(f.pa, ' '))
    put('od', f.od)
    for _, parent in ipairs(f.pa) do
      owned_call('ZADD', P .. ':ch:' .. parent, seq, id)
      redis.call('HSET', P .. ':i:' .. parent, 'hc', 1)
    end
  end
  redis.call('HSET', P .. ':i:' .. id, unpack(fields))
  if how == 'wait' then
    owned_call('ZADD', qkey(q, 'a'), 0, id)
    owned_call('SADD', P .. ':pw:' .. id, unpack(plan.pending[i]))
  elseif type(how) == 'table' then
    local status = how[1]
    local err = status == 'failed' and dependency_error(how[2], how[3]) or nil
    -- as cancel and a worker's failure keep them by default: a day, and until forgotten
    local ttl = status == 'failed' and math.huge or 86400
    end_unrun(id, q, task, status, err, now, ttl, f.u and f.uf or nil)
  end
end
