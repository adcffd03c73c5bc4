-- push / enqueue. ARGV: P, retried ('1'; 'k': not retried, the queue is known), queue, front, delay, maxsize, maxlen (-1: none), n,
-- then per item: id, priority key, priority, payload, task ('' for a plain item); then the time
-- of the publish-pending mark of every job made ('' for none); then, when some
-- jobs have a unique key or dependencies, their count and per such job: its index (from 0),
-- unique key ('=' then the key, or ''), unique_while, unique_for, on_dependency_failure, how
-- many jobs it depends on, their ids.
-- front is '1' (to the front), '0' (to the back) or 'p': to the back, and reply with the places.
-- Returns 0 when added (or when a retried call finds its items already there); with 'p', when
-- added, {'placed', created, rank...}: each item's rank once filed, false for one not ready (as
-- one handed straight to a waiting worker). The ready count
-- when maxsize refuses the batch (as {count}); {'missing', id} when a job depends
-- on an id that is no job (nothing is added); or {'dup', index, id, ...}: the jobs not made,
-- each with the id of the job that holds its unique key.
local q, front, placed = ARGV[3], ARGV[4] == '1', ARGV[4] == 'p'
local delay, maxsize, maxlen, n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if n == 0 then return 0 end
local pending = ARGV[9 + n * 5] ~= '' and ARGV[9 + n * 5]
local flows = ARGV[10 + n * 5] and read_flows(10 + n * 5)
if ARGV[2] == '1' then
  if not flows and redis.call('EXISTS', P .. ':i:' .. ARGV[9]) == 1 then return 0 end
  if flows and filed(n) then return flows_filed(flows, n, clock()) end
end
local now = clock()
local R = qkey(q, 'r')
if maxsize > 0 or maxlen >= 0 then promote(q, now, 1000) end  -- so the ready count is right
-- Jobs with unique keys or dependencies are checked before anything is written.
local plan = {}
if flows then
  local missing
  plan, missing = plan_flows(flows, n, now)
  if missing then return {'missing', missing} end
end
if maxsize > 0 then
  local held = owned_call('ZCARD', R)  -- ready items only: waiting and scheduled jobs are not
  if held + n - (plan.off or 0) > maxsize then return {held} end
end
local first = next_seq(n)
local J, S = qkey(q, 'j'), qkey(q, 's')
local created, due = stamp(now), stamp(now + delay)
local st = delay > 0 and 2 or 0
-- Each item is one HSET here; the sorted sets get one ZADD per batch below.
local ready, jobs, timed, made, members, marks = {}, {}, {}, {}, {}, {}
-- A job made: one of the queue's jobs, with its mark when the call marks the jobs it makes.
local function made_job(seq, id, task)
  jobs[#jobs + 1] = seq
  jobs[#jobs + 1] = id
  count_one(made, task)
  if pending then
    marks[#marks + 1] = pending
    marks[#marks + 1] = id
  end
end
for i = 0, n - 1 do
  local b = 9 + i * 5
  local id, task, seq = ARGV[b], ARGV[b + 4], first + i
  local m
  if front then
    m = ARGV[b + 1] .. '0' .. string.format('%016d', 9007199254740991 - seq) .. ':' .. id
  else
    m = ARGV[b + 1] .. '1' .. string.format('%016d', seq) .. ':' .. id
  end
  members[i] = m
  local h = P .. ':i:' .. id
  local how = flows and flows[i] and plan[i]
  if plan[i] == 'dup' then
    -- another job holds its unique key: not made
  elseif how then
    file_flow(q, id, m, seq, ARGV[b + 2], ARGV[b + 3], task, flows[i], plan, i, delay, now)
    made_job(seq, id, task)
    if how == 'go' then
      if st == 2 then
        timed[#timed + 1] = now + delay
        timed[#timed + 1] = id
      else
        ready[#ready + 1] = 0
        ready[#ready + 1] = m
      end
    end
  else
    if task == '' then
      if st == 2 then
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[b + 2], 'p', ARGV[b + 3], 'st', st, 'du', due)
      else
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[b + 2], 'p', ARGV[b + 3], 'st', st)
      end
    else
      if st == 2 then
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[b + 2], 'p', ARGV[b + 3], 'st', st,
                   't', task, 'n', seq, 'c', created, 'du', due)
      else
        redis.call('HSET', h, 'q', q, 'm', m, 'pr', ARGV[b + 2], 'p', ARGV[b + 3], 'st', st,
                   't', task, 'n', seq, 'c', created)
      end
      made_job(seq, id, task)
    end
    if st == 2 then
      timed[#timed + 1] = now + delay
      timed[#timed + 1] = id
    else
      ready[#ready + 1] = 0
      ready[#ready + 1] = m
    end
  end
end
zadd_pairs(R, ready)
zadd_pairs(J, jobs)
zadd_pairs(qkey(q, 'p'), marks)
zadd_pairs(S, timed)
count_all(q, 'enqueued', made)
if maxlen >= 0 then
  local extra = owned_call('ZCARD', R) - maxlen
  if extra > 0 then
    local dropped = redis.call(front and 'ZPOPMAX' or 'ZPOPMIN', R, extra)
    for i = 1, #dropped, 2 do
      local id = id_of(dropped[i])
      if id then
        redis.call('DEL', P .. ':i:' .. id)
        owned_call('ZREM', J, id)
      end
    end
  end
end
-- Even when the client knows the name ('k'): another process may have deleted the queue since.
owned_call('SADD', P .. ':queues', q)
-- Straight to workers waiting idle; the change is announced for what they do not take.
if not handoff(q, clock()) then changed(q) end
if placed and not plan.reply then
  local reply = {'placed', created}
  for i = 0, n - 1 do reply[i + 3] = owned_call('ZRANK', R, members[i]) or false end
  return reply
end
return plan.reply or 0
